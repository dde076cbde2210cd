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
pub enum Chroma {
    /// Colour at half the resolution each way: a third smaller files, and
    /// photographs look the same.
    #[default]
    #[serde(rename = "4:2:0")]
    Half,
    /// Colour at full resolution: for red text and fine coloured edges.
    #[serde(rename = "4:4:4")]
    Full,
}

/// The `format` op: the output format and the encoder's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Encoding {
    pub format: OutputFormat,
    /// 1 to 100; defaults to [`OutputFormat::default_quality`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// WebP only: lossless instead of lossy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lossless: bool,
    /// JPEG only: progressive scans, which show a coarse picture early.
    #[serde(default, skip_serializing_if = "is_false")]
    pub progressive: bool,
    /// JPEG and AVIF: colour resolution; 4:2:0 unless asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroma: Option<Chroma>,
    /// AVIF only: 0 (fastest) to 9 (smallest files); 4 unless asked, as
    /// libvips does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<u8>,
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
            chroma: None,
            effort: None,
        }
    }

    pub fn quality(&self) -> u8 {
        self.quality
            .unwrap_or_else(|| self.format.default_quality())
    }

    pub fn chroma(&self) -> Chroma {
        self.chroma.unwrap_or_default()
    }

    pub fn effort(&self) -> u8 {
        self.effort.unwrap_or(4)
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
        only("lossless", &[OutputFormat::Webp], self.lossless)?;
        only("progressive", &[OutputFormat::Jpeg], self.progressive)?;
        only(
            "chroma",
            &[OutputFormat::Jpeg, OutputFormat::Avif],
            self.chroma.is_some(),
        )?;
        only("effort", &[OutputFormat::Avif], self.effort.is_some())?;
        if let Some(e) = self.effort
            && e > 9
        {
            return Err(("effort", "must be 0 to 9".into()));
        }
        Ok(())
    }
}
