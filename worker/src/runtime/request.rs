//! A request message read as the web would have written it. Anyone who can
//! send to the request queue (its HTTP API, SQS, a leaked key) can forge
//! one, so its recipe is validated and costed again here, with the web's
//! own checks at job creation, before its original is downloaded.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use common::Limits;
use common::protocol::Request;
use common::recipe::Recipe;

/// A request message, read.
#[derive(Debug)]
pub(super) enum Read {
    /// One the web could have sent: process it.
    Valid(Request),
    /// Addressed to an output, but asking what the web refuses: that
    /// output fails with `error`. The request's recipe has no ops.
    Refused { request: Request, error: String },
    /// Not addressed to any output: nobody can be told.
    Unreadable(String),
}

/// A request with its recipe as sent, unchecked.
#[derive(Deserialize)]
struct Envelope {
    job_id: Uuid,
    image_id: Uuid,
    image_name: String,
    recipe: Value,
    source_key: String,
}

/// Reads `body`, checking its recipe against `limits`.
pub(super) fn read(body: &str, limits: &Limits) -> Read {
    let envelope: Envelope = match serde_json::from_str(body) {
        Ok(envelope) => envelope,
        Err(e) => return Read::Unreadable(e.to_string()),
    };
    let name = envelope.recipe.get("name").and_then(Value::as_str);
    let name = name.unwrap_or_default().to_owned();
    let checked = check(&envelope.recipe, limits);
    let request = |recipe| Request {
        job_id: envelope.job_id,
        image_id: envelope.image_id,
        image_name: envelope.image_name,
        recipe,
        source_key: envelope.source_key,
    };
    match checked {
        Ok(recipe) => Read::Valid(request(recipe)),
        Err(error) => Read::Refused {
            request: request(Recipe {
                name,
                ops: Vec::new(),
            }),
            error,
        },
    }
}

/// The recipe, if the web would have accepted it at job creation, or the
/// web's own "before" preview.
fn check(recipe: &Value, limits: &Limits) -> Result<Recipe, String> {
    // No user's recipe may take the preview's name, so the name alone does
    // not vouch for it: the whole recipe must be the preview's.
    if recipe.get("name").and_then(Value::as_str) == Some(Recipe::BEFORE) {
        let before = Recipe::before();
        return match serde_json::to_value(&before) {
            Ok(made) if made == *recipe => Ok(before),
            _ => Err(format!(
                "the request's recipe `{}` is not the preview's",
                Recipe::BEFORE
            )),
        };
    }
    let recipe = Recipe::from_json(recipe, "recipe")
        .map_err(|e| format!("the request's recipe is invalid: {e}"))?;
    limits.check_recipe(&recipe).map_err(|e| {
        format!(
            "the request's recipe `{}` is over this deployment's limits: {e}",
            recipe.name
        )
    })?;
    Ok(recipe)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(recipe: Value) -> String {
        json!({
            "job_id": Uuid::nil(),
            "image_id": Uuid::nil(),
            "image_name": "photo.heic",
            "recipe": recipe,
            "source_key": "jobs/x/originals/y",
        })
        .to_string()
    }

    #[test]
    fn the_webs_preview_is_taken_and_its_name_on_another_recipe_is_refused() {
        let limits = Limits::default();
        let preview = serde_json::to_value(Recipe::before()).unwrap();
        assert!(matches!(
            read(&body(preview), &limits),
            Read::Valid(Request { recipe, .. }) if recipe == Recipe::before()
        ));
        let forged = json!({"name": Recipe::BEFORE, "ops": [{"op": "blur", "sigma": 100.0}]});
        assert!(matches!(
            read(&body(forged), &limits),
            Read::Refused { error, .. } if error.contains("not the preview's")
        ));
    }
}
