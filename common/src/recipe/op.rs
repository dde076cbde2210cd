//! The ops: their parameters as users write them in JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::encoding::Encoding;

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
    Format(Encoding),
}

/// Each op's name as written in JSON, in one list: [`Op::name`] and
/// [`OP_NAMES`] are made from it, so neither can miss an op (the match is
/// exhaustive).
macro_rules! op_names {
    ($($variant:ident => $name:literal),* $(,)?) => {
        impl Op {
            /// The op's name, as written in JSON.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Op::$variant { .. } => $name,)*
                }
            }
        }

        /// Names of every op, as written in JSON.
        pub const OP_NAMES: &[&str] = &[$($name),*];
    };
}

op_names! {
    Crop => "crop",
    Thumbnail => "thumbnail",
    Resize => "resize",
    RedEye => "red_eye",
    TeethWhiten => "teeth_whiten",
    Recolor => "recolor",
    Contrast => "contrast",
    Brightness => "brightness",
    Rotate => "rotate",
    Flip => "flip",
    Blur => "blur",
    Sharpen => "sharpen",
    Format => "format",
}

fn default_strength() -> f32 {
    0.5
}

/// Largest width or height an op may ask for.
pub const MAX_OUTPUT_DIMENSION: u32 = 16_384;
