//! Validation of ops, naming the field at fault: parameters in range,
//! shapes that fit together.

use serde_json::Value;

use super::RecipeError;
use super::op::{MAX_OUTPUT_DIMENSION, OP_NAMES, Op, RecolorMode, Region};

/// The field at fault and why.
type Fault = (&'static str, String);

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
    pub fn validate(&self) -> Result<(), Fault> {
        match self {
            Op::Crop {
                x,
                y,
                width,
                height,
                aspect,
                gravity,
            } => crop(
                x.is_some() || y.is_some(),
                *width,
                *height,
                aspect.as_deref(),
                gravity.is_some(),
            ),
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
            } => recolor(*mode, *degrees, color.as_deref(), *amount),
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
            Op::Format(encoding) => encoding.validate(),
        }
    }
}

fn dim(field: &'static str, v: u32) -> Result<(), Fault> {
    if v == 0 || v > MAX_OUTPUT_DIMENSION {
        return Err((field, format!("must be 1 to {MAX_OUTPUT_DIMENSION} pixels")));
    }
    Ok(())
}

fn unit(field: &'static str, v: f32, lo: f32, hi: f32) -> Result<(), Fault> {
    if !v.is_finite() || v < lo || v > hi {
        return Err((field, format!("must be between {lo} and {hi}")));
    }
    Ok(())
}

fn region(r: &Option<Region>) -> Result<(), Fault> {
    if let Some(r) = r
        && (r.width == 0 || r.height == 0)
    {
        return Err(("region", "width and height must be at least 1".into()));
    }
    Ok(())
}

/// A crop takes a rectangle (`x`, `y`, `width`, `height`) or an aspect
/// (and a gravity), never parts of both.
fn crop(
    origin: bool,
    width: Option<u32>,
    height: Option<u32>,
    aspect: Option<&str>,
    gravity: bool,
) -> Result<(), Fault> {
    let both = || {
        (
            "aspect",
            "give either x/y/width/height or aspect/gravity".into(),
        )
    };
    match (aspect, width, height) {
        (Some(_), _, _) if origin || width.is_some() || height.is_some() => Err(both()),
        (Some(aspect), None, None) => parse_aspect(aspect).map(|_| ()),
        (None, Some(w), Some(h)) => {
            if gravity {
                return Err(("gravity", "only applies with `aspect`".into()));
            }
            dim("width", w)?;
            dim("height", h)
        }
        (None, None, _) => Err((
            "width",
            "missing: give x, y, width, height or aspect".into(),
        )),
        (None, Some(_), None) => Err(("height", "missing".into())),
        (Some(_), _, _) => Err(both()),
    }
}

fn recolor(
    mode: RecolorMode,
    degrees: Option<f32>,
    color: Option<&str>,
    amount: Option<f32>,
) -> Result<(), Fault> {
    if let Some(a) = amount {
        unit("amount", a, 0.0, 1.0)?;
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

/// Parses `"16:9"` into a ratio.
pub fn parse_aspect(s: &str) -> Result<(u32, u32), Fault> {
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
pub fn parse_color(s: &str) -> Result<[u8; 3], Fault> {
    let bad = || ("color", format!("`{s}` is not like \"#rrggbb\""));
    let hex = s.strip_prefix('#').ok_or_else(bad)?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}
