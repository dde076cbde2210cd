-- Queue::receive on an ordered queue: for each group whose head is visible,
-- lease the head and the visible messages behind it, in order.
with recursive groups as (
    (select message_group as name from queue_messages
     where queue_id = $1 and message_group is not null
     order by message_group limit 1)
    union all
    select (select message_group from queue_messages
            where queue_id = $1 and message_group > g.name
            order by message_group limit 1)
    from groups g
    where g.name is not null
), heads as (
    select h.id, h.pos, h.visible_at, g.name as message_group
    from groups g
    cross join lateral (
        select id, pos, visible_at from queue_messages
        where queue_id = $1 and message_group = g.name
        order by pos limit 1
    ) h
    where g.name is not null
), wanted as (
    -- As SQS does, a receive fills up from as few groups as it can, oldest
    -- head first: the groups it needs are those whose visible run, as this
    -- snapshot sees it, the earlier groups' runs leave room for. Only those
    -- heads are locked, so other receivers find the rest.
    select c.id,
           coalesce(sum(r.run) over (order by c.pos rows between unbounded preceding
                                                       and 1 preceding), 0) as before
    from (select * from heads where visible_at <= now()
          order by pos limit (select $2::int8)) c
    cross join lateral (
        select count(*) filter (where x.clear) as run
        from (select bool_and(q.visible_at <= now()) over (order by q.pos) as clear
              from queue_messages q
              where q.queue_id = $1 and q.message_group = c.message_group
                and q.pos >= c.pos
              order by q.pos
              limit (select $2::int8)) x
    ) r
), picked as (
    -- Locking the head is what claims a group: a receiver that skips it
    -- skips the group, so no two receivers take from one group at once.
    select m.id, m.pos, m.message_group, m.receive_count, m.enqueued_at,
           coalesce(m.receive_count >= $5::int4, false) as dead
    from queue_messages m
    where m.id = any(array(select id from wanted where before < $2))
      and m.visible_at <= now()
    order by m.pos
    for update of m skip locked
), behind as (
    select f.id, f.pos, p.pos as head_pos, p.id as head, f.rank, f.usable
    from picked p
    cross join lateral (
        select q.id, q.pos, row_number() over (order by q.pos) as rank,
               q.visible_at <= now() and coalesce(q.receive_count < $5::int4, true)
                   as usable
        from queue_messages q
        where q.queue_id = $1 and q.message_group = p.message_group and q.pos > p.pos
        order by q.pos
        limit (select $2::int8) - 1
    ) f
    where not p.dead
), locked as (
    -- Only its head's holder reaches for these, but a delete or visibility
    -- change may hold one: skipped, it ends its group's share here.
    select m.id
    from queue_messages m
    where m.id = any(array(select id from behind where usable))
      and m.visible_at <= now()
    order by m.pos
    for update of m skip locked
), followers as (
    -- Each group's unbroken run behind its head: order holds only if
    -- nothing in between is left out.
    select b.id, b.pos, b.head_pos
    from behind b
    where b.rank < coalesce((select min(x.rank) from behind x
                             where x.head = b.head
                               and x.id <> all(array(select id from locked))),
                            b.rank + 1)
), chosen as (
    select c.id
    from (select id, pos, pos as head_pos from picked where not dead
          union all
          select id, pos, head_pos from followers) c
    order by c.head_pos, c.pos
    limit (select $2::int8)
), leased as (
    update queue_messages m
    set visible_at = now() + make_interval(secs => $3),
        lease = $4,
        receive_count = m.receive_count + 1,
        first_received_at = coalesce(m.first_received_at, now())
    where m.id = any(array(select id from chosen))
    returning m.id, m.ids, m.receive_count, m.enqueued_at, m.first_received_at,
              m.dead_letter_reason, m.dead_letter_source,
              set_config('synchronous_commit', 'off', true)
), counted as (
    insert into queue_counter_changes (queue_id, bucket, leased)
    select $1, queue_bucket(now() + make_interval(secs => $3)),
           sum(cardinality(ids))
    from leased
    having count(*) > 0
)
select l.id as "row_id!", l.ids as "ids?",
       array[(select c.bodies[l.ids[1] - c.id + 1]
              from queue_chunks c
              where c.id = queue_chunk_of(l.ids[1]))] as "bodies?",
       l.receive_count as "receive_count!", l.enqueued_at as "enqueued_at!",
       l.first_received_at as "first_received_at!",
       l.dead_letter_reason,
       case when l.dead_letter_source is not null
            then (select q.name from queue_queues q where q.id = l.dead_letter_source) end as dead_letter_source
from leased l
union all
select id, null, null, receive_count, enqueued_at, now(), null, null
from picked
where dead
