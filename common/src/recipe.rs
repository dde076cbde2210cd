//! Recipes and operations as users write them (JSON), with validation.
//!
//! Parsing goes through [`serde_json::Value`] first so that every error can
//! name the op and the field at fault.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A named chain of ops; one output image per (image, recipe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Recipe {
    pub name: String,
    pub ops: Vec<Op>,
}

/// A rectangle in pixels of the EXIF-oriented image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gravity {
    #[default]
    Center,
    North,
    South,
    East,
    West,
    /// The region with the most detail.
    Smart,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Fit inside the box, keeping the aspect ratio.
    #[default]
    Inside,
    /// Cover the box, keeping the aspect ratio, then crop to it.
    Cover,
    /// Stretch to the box exactly.
    Fill,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecolorMode {
    Grayscale,
    Sepia,
    HueRotate,
    Tint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    Horizontal,
    Vertical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
}

impl OutputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        }
    }

    /// The format an output path's extension asks for.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "webp" => Some(OutputFormat::Webp),
            _ => None,
        }
    }
}

/// One operation of a recipe. See CONTRACT.md for the JSON of each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    Crop {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        x: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        y: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aspect: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gravity: Option<Gravity>,
    },
    Thumbnail {
        width: u32,
        height: u32,
    },
    Resize {
        width: u32,
        height: u32,
        #[serde(default)]
        fit: Fit,
    },
    RedEye {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<Region>,
    },
    TeethWhiten {
        #[serde(default = "default_strength")]
        strength: f32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<Region>,
    },
    Recolor {
        mode: RecolorMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        degrees: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<f32>,
    },
    Contrast {
        amount: f32,
    },
    Brightness {
        amount: f32,
    },
    Rotate {
        degrees: u32,
    },
    Flip {
        axis: Axis,
    },
    Blur {
        sigma: f32,
    },
    Sharpen {
        amount: f32,
    },
    Format {
        format: OutputFormat,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quality: Option<u8>,
    },
}

impl Op {
    /// The op's name, as written in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Crop { .. } => "crop",
            Op::Thumbnail { .. } => "thumbnail",
            Op::Resize { .. } => "resize",
            Op::RedEye { .. } => "red_eye",
            Op::TeethWhiten { .. } => "teeth_whiten",
            Op::Recolor { .. } => "recolor",
            Op::Contrast { .. } => "contrast",
            Op::Brightness { .. } => "brightness",
            Op::Rotate { .. } => "rotate",
            Op::Flip { .. } => "flip",
            Op::Blur { .. } => "blur",
            Op::Sharpen { .. } => "sharpen",
            Op::Format { .. } => "format",
        }
    }
}

fn default_strength() -> f32 {
    0.5
}

/// Names of every op, as written in JSON.
pub const OP_NAMES: &[&str] = &[
    "crop",
    "thumbnail",
    "resize",
    "red_eye",
    "teeth_whiten",
    "recolor",
    "contrast",
    "brightness",
    "rotate",
    "flip",
    "blur",
    "sharpen",
    "format",
];

/// Largest width or height an op may ask for.
pub const MAX_OUTPUT_DIMENSION: u32 = 16_384;

/// What is wrong with a recipe, naming where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct RecipeError {
    /// e.g. `recipes[0].ops[1] (thumbnail).width`
    pub location: String,
    pub message: String,
}

impl Recipe {
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

    /// The output format this recipe asks for, if any.
    pub fn format(&self) -> Option<(OutputFormat, Option<u8>)> {
        self.ops.iter().rev().find_map(|op| match op {
            Op::Format { format, quality } => Some((*format, *quality)),
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

impl Op {
    /// Parses and validates one op from JSON; `location` prefixes errors.
    pub fn from_json(value: &Value, location: &str) -> Result<Op, RecipeError> {
        let name = value
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| RecipeError {
                location: format!("{location}.op"),
                message: "missing: each op needs an \"op\" naming its kind".into(),
            })?;
        let here = format!("{location} ({name})");
        if !OP_NAMES.contains(&name) {
            return Err(RecipeError {
                location: format!("{location}.op"),
                message: format!("unknown op `{name}`; known ops: {}", OP_NAMES.join(", ")),
            });
        }
        let op: Op = serde_json::from_value(value.clone()).map_err(|e| RecipeError {
            location: here.clone(),
            message: e.to_string(),
        })?;
        op.validate().map_err(|(field, message)| RecipeError {
            location: format!("{here}.{field}"),
            message,
        })?;
        Ok(op)
    }

    /// Checks parameter ranges; returns the field at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        fn dim(field: &'static str, v: u32) -> Result<(), (&'static str, String)> {
            if v == 0 || v > MAX_OUTPUT_DIMENSION {
                return Err((field, format!("must be 1 to {MAX_OUTPUT_DIMENSION} pixels")));
            }
            Ok(())
        }
        fn unit(
            field: &'static str,
            v: f32,
            lo: f32,
            hi: f32,
        ) -> Result<(), (&'static str, String)> {
            if !v.is_finite() || v < lo || v > hi {
                return Err((field, format!("must be between {lo} and {hi}")));
            }
            Ok(())
        }
        fn region(r: &Option<Region>) -> Result<(), (&'static str, String)> {
            if let Some(r) = r
                && (r.width == 0 || r.height == 0)
            {
                return Err(("region", "width and height must be at least 1".into()));
            }
            Ok(())
        }
        match self {
            Op::Crop {
                x,
                y,
                width,
                height,
                aspect,
                gravity,
            } => match (aspect, width, height) {
                (Some(aspect), None, None) => {
                    if x.is_some() || y.is_some() {
                        return Err((
                            "aspect",
                            "give either x/y/width/height or aspect/gravity".into(),
                        ));
                    }
                    parse_aspect(aspect).map(|_| ())
                }
                (None, Some(w), Some(h)) => {
                    if gravity.is_some() {
                        return Err(("gravity", "only applies with `aspect`".into()));
                    }
                    dim("width", *w)?;
                    dim("height", *h)
                }
                (Some(_), _, _) => Err((
                    "aspect",
                    "give either x/y/width/height or aspect/gravity".into(),
                )),
                (None, None, _) => Err((
                    "width",
                    "missing: give x, y, width, height or aspect".into(),
                )),
                (None, Some(_), None) => Err(("height", "missing".into())),
            },
            Op::Thumbnail { width, height } | Op::Resize { width, height, .. } => {
                dim("width", *width)?;
                dim("height", *height)
            }
            Op::RedEye { region: r } => region(r),
            Op::TeethWhiten {
                strength,
                region: r,
            } => {
                unit("strength", *strength, 0.0, 1.0)?;
                region(r)
            }
            Op::Recolor {
                mode,
                degrees,
                color,
                amount,
            } => {
                if let Some(a) = amount {
                    unit("amount", *a, 0.0, 1.0)?;
                }
                match mode {
                    RecolorMode::HueRotate => match degrees {
                        Some(d) if d.is_finite() => Ok(()),
                        _ => Err(("degrees", "hue_rotate needs `degrees` (a number)".into())),
                    },
                    RecolorMode::Tint => match color {
                        Some(c) => parse_color(c).map(|_| ()),
                        None => Err(("color", "tint needs `color` as \"#rrggbb\"".into())),
                    },
                    RecolorMode::Grayscale | RecolorMode::Sepia => Ok(()),
                }
            }
            Op::Contrast { amount } | Op::Brightness { amount } => {
                unit("amount", *amount, -1.0, 1.0)
            }
            Op::Rotate { degrees } => match degrees {
                90 | 180 | 270 => Ok(()),
                _ => Err(("degrees", "must be 90, 180 or 270".into())),
            },
            Op::Flip { .. } => Ok(()),
            Op::Blur { sigma } => unit("sigma", *sigma, 0.0, 100.0),
            Op::Sharpen { amount } => unit("amount", *amount, 0.0, 10.0),
            Op::Format { quality, .. } => match quality {
                Some(q) if !(1..=100).contains(q) => Err(("quality", "must be 1 to 100".into())),
                _ => Ok(()),
            },
        }
    }
}

/// Parses `"16:9"` into a ratio.
pub fn parse_aspect(s: &str) -> Result<(u32, u32), (&'static str, String)> {
    let bad = || ("aspect", format!("`{s}` is not like \"16:9\""));
    let (w, h) = s.split_once(':').ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 1000 || h > 1000 {
        return Err(bad());
    }
    Ok((w, h))
}

/// Parses `"#rrggbb"`.
pub fn parse_color(s: &str) -> Result<[u8; 3], (&'static str, String)> {
    let bad = || ("color", format!("`{s}` is not like \"#rrggbb\""));
    let hex = s.strip_prefix('#').ok_or_else(bad)?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
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
