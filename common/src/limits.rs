//! Bounds on what is accepted and made: file size, pixels, dimensions and
//! the work a recipe may cost. Checked from headers and estimates, before any
//! pixel is decoded.

use serde::{Deserialize, Serialize};

use crate::cost::{self, Estimate, Source};
use crate::recipe::{Encoding, OutputFormat, Recipe};

/// The limits of a deployment (`DARKROOM_MAX_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest width × height read or made (default 50 MP).
    pub max_pixels: u64,
    /// Largest encoded file (default 50 MiB).
    pub max_bytes: u64,
    /// Largest width or height (default 30 000).
    pub max_dimension: u32,
    /// Most work a recipe may cost, in passes over a `max_pixels` image
    /// (default 64; see [`crate::cost`]).
    pub max_recipe_cost: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_bytes: 50 * 1024 * 1024,
            max_dimension: 30_000,
            max_recipe_cost: 64,
        }
    }
}

/// What is over a limit. Permanent: the same bytes and ops give the same
/// answer.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooManyBytes { size: u64, limit: u64 },
    #[error(
        "the recipe would make an image of {pixels} pixels, over the limit of {limit} pixels \
         (DARKROOM_MAX_PIXELS); ask for a smaller size"
    )]
    OutputTooLarge { pixels: u64, limit: u64 },
    #[error(
        "the recipe would cost {passes:.0} passes over a {megapixels:.0} MP image, over the \
         budget of {limit} (DARKROOM_MAX_RECIPE_COST); use fewer or lighter ops, or shrink first"
    )]
    OverBudget {
        passes: f64,
        limit: u32,
        megapixels: f64,
    },
}

impl Limits {
    /// The most work, in pixel passes, one recipe may cost.
    pub fn max_work(&self) -> u64 {
        u64::from(self.max_recipe_cost).saturating_mul(self.max_pixels)
    }

    /// Refuses a file over `max_bytes`.
    pub fn check_size(&self, size: u64) -> Result<(), LimitError> {
        if size > self.max_bytes {
            return Err(LimitError::TooManyBytes {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Refuses a recipe judged on the worst image these limits let through:
    /// the most pixels, no shrink on load, encoded as PNG unless it names a
    /// format. The web checks it when a job is created; a worker again for
    /// each request, which anyone able to send to the queue could forge.
    pub fn check_recipe(&self, recipe: &Recipe) -> Result<(), LimitError> {
        let png = Encoding::of(OutputFormat::Png);
        let encoding = recipe.encoding().unwrap_or(&png);
        let worst = Source::worst(self.max_pixels, self.max_bytes, cost::DECODING);
        self.check(&cost::estimate(&worst, &recipe.ops, encoding))
    }

    /// Refuses an estimate over the output pixel cap or the work budget.
    pub fn check(&self, estimate: &Estimate) -> Result<(), LimitError> {
        if estimate.largest_output > self.max_pixels {
            return Err(LimitError::OutputTooLarge {
                pixels: estimate.largest_output,
                limit: self.max_pixels,
            });
        }
        if estimate.work > self.max_work() {
            return Err(LimitError::OverBudget {
                passes: estimate.passes_over(self.max_pixels),
                limit: self.max_recipe_cost,
                megapixels: self.max_pixels as f64 / 1e6,
            });
        }
        Ok(())
    }
}
