//! Recipes and operations as users write them (JSON), with validation.
//!
//! Parsing goes through [`serde_json::Value`] first so that every error can
//! name the op and the field at fault.

mod encoding;
mod op;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use encoding::{Encoding, Metadata, OutputFormat, Subsampling};
pub use op::{Axis, Fit, Gravity, MAX_OUTPUT_DIMENSION, OP_NAMES, Op, RecolorMode, Region};
pub use validate::{parse_aspect, parse_color};

/// A named chain of ops; one output image per (image, recipe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Recipe {
    pub name: String,
    pub ops: Vec<Op>,
}

/// What is wrong with a recipe, naming where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct RecipeError {
    /// e.g. `recipes[0].ops[1] (thumbnail).width`
    pub location: String,
    pub message: String,
}

impl Recipe {
    /// The name of the recipe that makes an original's "before" preview for
    /// browsers that cannot show the original (see
    /// [`crate::probe::InputFormat::browsers_show`]). No user's recipe can
    /// take it: their names are letters, digits, `_` and `-`.
    pub const BEFORE: &'static str = ".before";

    /// The "before" preview: a JPEG of at most 1600 px, what a photo
    /// viewer's full-screen view needs and no more (HEIC's embedded
    /// thumbnail serves when it is that large).
    pub fn before() -> Recipe {
        Recipe {
            name: Recipe::BEFORE.to_owned(),
            ops: vec![
                Op::Thumbnail {
                    width: 1600,
                    height: 1600,
                },
                Op::Format(Encoding::of(OutputFormat::Jpeg)),
            ],
        }
    }

    /// Parses and validates one recipe from JSON; `location` prefixes errors.
    pub fn from_json(value: &Value, location: &str) -> Result<Recipe, RecipeError> {
        let err = |loc: String, message: String| RecipeError {
            location: loc,
            message,
        };
        let obj = value
            .as_object()
            .ok_or_else(|| err(location.into(), "must be an object".into()))?;
        if let Some(key) = obj.keys().find(|k| *k != "name" && *k != "ops") {
            return Err(err(
                format!("{location}.{key}"),
                "unknown field; a recipe has `name` and `ops`".into(),
            ));
        }
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{location}.name"), "missing (a string)".into()))?;
        check_recipe_name(name).map_err(|m| err(format!("{location}.name"), m))?;
        let ops = obj.get("ops").and_then(Value::as_array).ok_or_else(|| {
            err(
                format!("{location}.ops"),
                "missing (an array of ops)".into(),
            )
        })?;
        if ops.is_empty() {
            return Err(err(
                format!("{location}.ops"),
                "needs at least one op".into(),
            ));
        }
        if ops.len() > 32 {
            return Err(err(format!("{location}.ops"), "at most 32 ops".into()));
        }
        let ops = ops
            .iter()
            .enumerate()
            .map(|(i, op)| Op::from_json(op, &format!("{location}.ops[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Recipe {
            name: name.to_owned(),
            ops,
        })
    }

    /// The output encoding this recipe asks for, if any.
    pub fn encoding(&self) -> Option<&Encoding> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::Format(encoding) => Some(encoding),
            _ => None,
        })
    }
}

/// Recipe names that are paths of their own under an image's URL.
const RESERVED_NAMES: &[&str] = &["original"];

fn check_recipe_name(name: &str) -> Result<(), String> {
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "`{name}` is reserved (it is the URL of the uploaded file); pick another name"
        ));
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err("1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'".into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(v: Value) -> Result<Op, RecipeError> {
        Op::from_json(&v, "ops[0]")
    }

    #[test]
    fn thumbnail_parses() {
        assert_eq!(
            op(json!({"op":"thumbnail","width":256,"height":128})).unwrap(),
            Op::Thumbnail {
                width: 256,
                height: 128
            }
        );
    }

    #[test]
    fn unknown_op_is_named() {
        let e = op(json!({"op":"sparkle"})).unwrap_err();
        assert!(e.message.contains("unknown op `sparkle`"), "{e}");
    }

    #[test]
    fn missing_field_names_op_and_field() {
        let e = op(json!({"op":"thumbnail","width":256})).unwrap_err();
        assert!(e.location.contains("thumbnail"), "{e}");
        assert!(e.message.contains("height"), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let e = op(json!({"op":"blur","sigma":1.0,"radius":3})).unwrap_err();
        assert!(e.message.contains("radius"), "{e}");
    }

    #[test]
    fn out_of_range_names_field() {
        let e = op(json!({"op":"contrast","amount":3.0})).unwrap_err();
        assert_eq!(e.location, "ops[0] (contrast).amount");
        let e = op(json!({"op":"rotate","degrees":45})).unwrap_err();
        assert_eq!(e.location, "ops[0] (rotate).degrees");
        let e = op(json!({"op":"format","format":"jpeg","quality":0})).unwrap_err();
        assert_eq!(e.location, "ops[0] (format).quality");
    }

    #[test]
    fn crop_takes_rect_or_aspect_not_both() {
        op(json!({"op":"crop","x":0,"y":0,"width":10,"height":10})).unwrap();
        op(json!({"op":"crop","aspect":"16:9","gravity":"smart"})).unwrap();
        assert!(op(json!({"op":"crop","aspect":"16:9","width":10,"height":10})).is_err());
        assert!(op(json!({"op":"crop","aspect":"16-9"})).is_err());
    }

    #[test]
    fn recipe_names_are_checked() {
        let e = Recipe::from_json(
            &json!({"name":"../x","ops":[{"op":"flip","axis":"vertical"}]}),
            "recipes[0]",
        )
        .unwrap_err();
        assert_eq!(e.location, "recipes[0].name");
    }

    #[test]
    fn original_is_not_a_recipe_name() {
        let e = Recipe::from_json(
            &json!({"name":"original","ops":[{"op":"flip","axis":"vertical"}]}),
            "recipes[0]",
        )
        .unwrap_err();
        assert!(e.message.contains("reserved"), "{e}");
    }
}
