//! One delivery from its leased message to its end. Each step that can end
//! it early (an unreadable message, a gone subscription, the pending cap, a
//! busy or parked endpoint, a non-public address) comes before the POST, so
//! a delivery that cannot go costs no request.

use super::Pusher;
use super::subscription::Subscription;
use crate::topics::endpoint_key;
use crate::topics::publish::Delivery;
use crate::{Message, Queue, Result};

impl Pusher {
    pub(super) async fn deliver(&self, queue: &Queue, m: &Message) -> Result<()> {
        let Ok(d) = serde_json::from_str::<Delivery>(&m.body) else {
            tracing::error!(message = m.id, "unreadable topic delivery dropped");
            return self.finish(queue, m, None).await;
        };
        let Some(s) = Subscription::read(self.queues.pool(), d.subscription).await? else {
            // Unsubscribed since.
            return self.finish(queue, m, None).await;
        };
        if d.number > 0 && s.published - d.number >= self.settings.max_pending {
            return self.drop_over_cap(queue, m, &d, &s).await;
        }
        let endpoint = endpoint_key(&s.endpoint);
        let Some(_place) = self.admit(queue, m, &endpoint).await? else {
            return Ok(());
        };
        let Some(client) = self.client(&s) else {
            tracing::warn!(
                endpoint = s.endpoint,
                "delivery to a non-public address dropped"
            );
            return self.finish(queue, m, Some(d.subscription)).await;
        };
        let delivered = self.post(client, &d, &s, d.tries + 1).await;
        self.breakers.record(&endpoint, delivered);
        self.settle(queue, m, d, &s, delivered).await
    }
}
