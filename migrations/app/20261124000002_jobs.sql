-- Jobs, images and outputs (web/ crate).
create table jobs (
    id          uuid primary key,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  bytea not null,
    recipes     jsonb not null,
    created_at  timestamptz not null default now()
);

create table images (
    id            uuid primary key,
    job_id        uuid not null references jobs (id) on delete cascade,
    name          text not null,
    bytes         bigint not null,
    content_type  text not null,
    storage_key   text not null,
    created_at    timestamptz not null default now()
);
create index images_job_id on images (job_id, created_at);

-- Every change of an output takes the next number from here, so a progress
-- stream can send what changed after the last number a client saw
-- (Server-Sent Events' Last-Event-ID).
create sequence output_events;

create table outputs (
    image_id     uuid not null references images (id) on delete cascade,
    recipe       text not null,
    job_id       uuid not null references jobs (id) on delete cascade,
    state        text not null default 'queued'
                 check (state in ('queued', 'processing', 'done', 'failed')),
    width        integer,
    height       integer,
    bytes        bigint,
    format       text,
    storage_key  text,
    error        text,
    updated_at   timestamptz not null default now(),
    event        bigint not null default nextval('output_events'),
    primary key (image_id, recipe)
);
create index outputs_job_event on outputs (job_id, event);
