//! How a recipe's output is encoded: the `format` op.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
}

impl OutputFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    /// The format an output path's extension asks for.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "webp" => Some(OutputFormat::Webp),
            "avif" => Some(OutputFormat::Avif),
            _ => None,
        }
    }

    /// The quality used when a recipe names none. JPEG keeps the 85 it
    /// always had; WebP and AVIF take imgproxy's defaults, which look alike
    /// to JPEG at 85 on photographs.
    pub fn default_quality(self) -> u8 {
        match self {
            OutputFormat::Jpeg => 85,
            OutputFormat::Webp => 80,
            OutputFormat::Avif => 65,
            OutputFormat::Png => 100,
        }
    }
}

/// How colour is sampled beside brightness in JPEG and AVIF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Subsampling {
    /// 4:2:0, colour at half the resolution each way: a third smaller
    /// files, and photographs look the same.
    #[default]
    #[serde(rename = "420")]
    Half,
    /// 4:4:4, colour at full resolution: for red text and fine coloured
    /// edges.
    #[serde(rename = "444")]
    Full,
}

/// What of a photo's EXIF an output keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metadata {
    /// Nothing: no EXIF, no XMP, no comments.
    #[default]
    Strip,
    /// Artist, copyright and the dates (with their time zones); no GPS, no
    /// camera, no serial numbers.
    Copyright,
    /// Every EXIF tag of the photo (camera, exposure, GPS...), with its
    /// orientation set to upright; never the embedded thumbnail, which
    /// shows the photo before the recipe.
    All,
}

/// The `format` op: the output format and the encoder's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Encoding {
    pub format: OutputFormat,
    /// 1 to 100; defaults to [`OutputFormat::default_quality`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// WebP and AVIF: lossless instead of lossy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lossless: bool,
    /// JPEG only: progressive scans, which show a coarse picture early.
    #[serde(default, skip_serializing_if = "is_false")]
    pub progressive: bool,
    /// JPEG and AVIF: colour resolution; 4:2:0 unless asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsampling: Option<Subsampling>,
    /// AVIF only: libaom's speed, 0 (smallest files) to 10 (fastest); 5
    /// unless asked, as libvips' default effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u8>,
    /// What of the photo's EXIF the output keeps; `strip` unless asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Keep a wide-gamut photo's colours (Display P3, Adobe RGB...) as they
    /// are, its profile embedded, instead of converting them to sRGB.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_icc: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Encoding {
    /// `format` with every setting at its default.
    pub fn of(format: OutputFormat) -> Self {
        Encoding {
            format,
            quality: None,
            lossless: false,
            progressive: false,
            subsampling: None,
            speed: None,
            metadata: None,
            keep_icc: false,
        }
    }

    pub fn quality(&self) -> u8 {
        self.quality
            .unwrap_or_else(|| self.format.default_quality())
    }

    /// Lossless AVIF needs colour at full resolution.
    pub fn subsampling(&self) -> Subsampling {
        match self.subsampling {
            _ if self.lossless => Subsampling::Full,
            Some(s) => s,
            None => Subsampling::Half,
        }
    }

    pub fn speed(&self) -> u8 {
        self.speed.unwrap_or(5)
    }

    pub fn metadata(&self) -> Metadata {
        self.metadata.unwrap_or_default()
    }

    /// Checks settings against the format; returns the field at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let format = self.format;
        let only = |field: &'static str, formats: &[OutputFormat], set: bool| {
            if set && !formats.contains(&format) {
                let names: Vec<_> = formats.iter().map(|f| f.as_str()).collect();
                return Err((
                    field,
                    format!(
                        "applies to {} only, not {}",
                        names.join(" and "),
                        format.as_str()
                    ),
                ));
            }
            Ok(())
        };
        if let Some(q) = self.quality
            && !(1..=100).contains(&q)
        {
            return Err(("quality", "must be 1 to 100".into()));
        }
        only(
            "lossless",
            &[OutputFormat::Webp, OutputFormat::Avif],
            self.lossless,
        )?;
        only("progressive", &[OutputFormat::Jpeg], self.progressive)?;
        only(
            "subsampling",
            &[OutputFormat::Jpeg, OutputFormat::Avif],
            self.subsampling.is_some(),
        )?;
        only("speed", &[OutputFormat::Avif], self.speed.is_some())?;
        if let Some(speed) = self.speed
            && speed > 10
        {
            return Err(("speed", "must be 0 to 10".into()));
        }
        if self.lossless && self.subsampling == Some(Subsampling::Half) {
            return Err(("subsampling", "lossless keeps colour at 444".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::recipe::Op;

    fn format(v: serde_json::Value) -> Result<Op, crate::recipe::RecipeError> {
        Op::from_json(&v, "ops[0]")
    }

    #[test]
    fn the_contracts_settings_parse() {
        let op = format(
            json!({"op":"format","format":"avif","quality":60,"subsampling":"444","speed":8,"metadata":"strip"}),
        );
        let Op::Format(encoding) = op.unwrap() else {
            panic!("not a format op")
        };
        assert_eq!(encoding.speed(), 8);
        assert_eq!(encoding.subsampling(), super::Subsampling::Full);
        format(json!({"op":"format","format":"jpeg","progressive":true,"subsampling":"420"}))
            .unwrap();
        format(json!({"op":"format","format":"webp","lossless":true})).unwrap();
    }

    #[test]
    fn a_setting_for_another_format_is_refused_by_name() {
        for (op, field) in [
            (
                json!({"op":"format","format":"jpeg","lossless":true}),
                "lossless",
            ),
            (
                json!({"op":"format","format":"webp","progressive":true}),
                "progressive",
            ),
            (
                json!({"op":"format","format":"png","subsampling":"444"}),
                "subsampling",
            ),
            (json!({"op":"format","format":"webp","speed":3}), "speed"),
            (json!({"op":"format","format":"avif","speed":11}), "speed"),
            (
                json!({"op":"format","format":"avif","lossless":true,"subsampling":"420"}),
                "subsampling",
            ),
        ] {
            let e = format(op.clone()).unwrap_err();
            assert_eq!(e.location, format!("ops[0] (format).{field}"), "{op}: {e}");
        }
    }

    #[test]
    fn every_format_takes_a_metadata_policy_and_keep_icc() {
        for f in ["jpeg", "png", "webp", "avif"] {
            for policy in ["strip", "copyright", "all"] {
                let op =
                    format(json!({"op":"format","format":f,"metadata":policy,"keep_icc":true}));
                let Op::Format(encoding) = op.unwrap() else {
                    panic!("not a format op")
                };
                assert!(encoding.keep_icc);
                assert_eq!(json!(encoding.metadata()), json!(policy));
            }
        }
        let e = format(json!({"op":"format","format":"jpeg","metadata":"gps"})).unwrap_err();
        assert!(e.message.contains("`strip`, `copyright`, `all`"), "{e}");
    }
}
