//! A message as a router names it: its shard and its id there.

use std::fmt;

/// Where a sent message went: ids are unique within a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub shard: i32,
    pub id: i64,
}

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shard != 0 {
            write!(f, "{}:", self.shard)?;
        }
        write!(f, "{}", self.id)
    }
}

impl MessageRef {
    /// The message as a UUID, for clients that expect one (SQS's
    /// `MessageId`): an RFC 9562 version 8 UUID that holds the shard and the
    /// id as they are, so it reads back ([`MessageRef::from_uuid`]) and
    /// shows both in hex: shard 2, id 5000 is
    /// `00000002-0000-8000-8000-000000001388`.
    pub fn to_uuid(self) -> uuid::Uuid {
        let id = self.id.to_be_bytes();
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.shard.to_be_bytes());
        b[4..6].copy_from_slice(&id[..2]);
        b[6] = 0x80; // version 8
        b[8] = 0x80; // RFC 9562 variant
        b[10..].copy_from_slice(&id[2..]);
        uuid::Uuid::from_bytes(b)
    }

    /// The message a [`MessageRef::to_uuid`] names; `None` for any other
    /// UUID.
    pub fn from_uuid(u: uuid::Uuid) -> Option<Self> {
        let b = u.as_bytes();
        if b[6] != 0x80 || b[7] != 0 || b[8] != 0x80 || b[9] != 0 {
            return None;
        }
        let mut id = [0u8; 8];
        id[..2].copy_from_slice(&b[4..6]);
        id[2..].copy_from_slice(&b[10..]);
        Some(Self {
            shard: i32::from_be_bytes(b[..4].try_into().ok()?),
            id: i64::from_be_bytes(id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_refs_are_uuids_that_read_back_losslessly() {
        let refs = [
            MessageRef { shard: 0, id: 5000 },
            MessageRef { shard: 2, id: 7 },
            MessageRef {
                shard: i32::MAX,
                id: i64::MAX,
            },
            MessageRef {
                shard: -1,
                id: i64::MIN,
            },
        ];
        for r in refs {
            let u = r.to_uuid();
            assert_eq!(u.get_version_num(), 8);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(MessageRef::from_uuid(u), Some(r));
            assert_eq!(u.to_string().parse::<uuid::Uuid>().unwrap(), u);
        }
        assert_eq!(
            MessageRef { shard: 2, id: 5000 }.to_uuid().to_string(),
            "00000002-0000-8000-8000-000000001388"
        );
        assert_eq!(MessageRef::from_uuid(uuid::Uuid::new_v4()), None);
    }

    #[test]
    fn message_refs_name_their_shard_unless_it_is_the_control_database() {
        assert_eq!(MessageRef { shard: 0, id: 7 }.to_string(), "7");
        assert_eq!(MessageRef { shard: 2, id: 7 }.to_string(), "2:7");
    }
}
