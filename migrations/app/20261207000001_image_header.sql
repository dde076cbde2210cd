-- What an image's header said at upload (web/ crate), so that work asked of
-- it later (recipes added to its job, a retried output) is charged as its
-- upload was. Null when the header was not within the bytes read to judge
-- it: such an image is charged as the largest the limits allow.
alter table images add column width integer;
alter table images add column height integer;
alter table images add column bytes_per_pixel smallint;
alter table images add column scalable boolean;
