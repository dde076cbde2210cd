//! HEIC and AVIF through libheif: the primary image decoded with the file's
//! own rotation, mirroring and crop applied, and AVIF encoded with libaom at
//! libvips' settings.

use common::Limits;
use common::probe::check_dimensions;
use common::recipe::{Encoding, Subsampling};
use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    Channel, ColorProfileRaw, ColorSpace, CompressionFormat, DecodingOptions,
    EncoderParameterValue, EncoderQuality, HeifContext, HeifError, Image, ImageHandle, LibHeif,
    RgbChroma, color_profile_types,
};

use super::{Decoded, Embedded};
use crate::engine::EngineError;
use crate::engine::color::Colours;

/// Decodes a HEIF's primary image upright, 8 bits per sample.
pub(super) fn decode(input: &[u8], limits: &Limits) -> Result<Decoded, EngineError> {
    let context = HeifContext::read_from_bytes(input).map_err(corrupt)?;
    let handle = context.primary_image_handle().map_err(corrupt)?;
    // The probe bounded the largest image the file declares; this is the
    // one about to be decoded, as rotated.
    check_dimensions(handle.width(), handle.height(), limits)?;
    decode_item(&handle, &handle)
}

/// The smallest thumbnail a HEIF embeds (phones store one) that is at
/// least the size `plan` asks of its primary image's size as shown, decoded
/// upright and described by the primary image's colours, with what `plan`
/// made of that size; `None` when `plan` asks nothing or no thumbnail is
/// that large.
pub(in crate::engine) fn decode_thumbnail<T>(
    input: &[u8],
    limits: &Limits,
    plan: impl FnOnce(u32, u32) -> Option<(T, u32, u32)>,
) -> Result<Option<(T, Decoded)>, EngineError> {
    let context = HeifContext::read_from_bytes(input).map_err(corrupt)?;
    let primary = context.primary_image_handle().map_err(corrupt)?;
    let Some((planned, min_w, min_h)) = plan(primary.width(), primary.height()) else {
        return Ok(None);
    };
    let mut ids = vec![0; primary.number_of_thumbnails()];
    let count = primary.thumbnail_ids(&mut ids);
    let thumbnail = ids[..count]
        .iter()
        .filter_map(|&id| primary.thumbnail(id).ok())
        .filter(|t| t.width() >= min_w && t.height() >= min_h)
        .min_by_key(|t| u64::from(t.width()) * u64::from(t.height()));
    let Some(thumbnail) = thumbnail else {
        return Ok(None);
    };
    check_dimensions(thumbnail.width(), thumbnail.height(), limits)?;
    Ok(Some((planned, decode_item(&thumbnail, &primary)?)))
}

/// The EXIF block of a HEIF's primary image, from its TIFF header on;
/// `None` when it has none or the file cannot be read.
pub(super) fn exif(input: &[u8]) -> Option<Vec<u8>> {
    let context = HeifContext::read_from_bytes(input).ok()?;
    let primary = context.primary_image_handle().ok()?;
    let mut ids = [0; 1];
    if primary.metadata_block_ids(&mut ids, b"Exif") == 0 {
        return None;
    }
    let block = primary.metadata(ids[0]).ok()?;
    // HEIF's Exif item starts with the distance from the end of these four
    // bytes to the TIFF header (past an "Exif\0\0" some writers add).
    let (offset, rest) = block.split_first_chunk::<4>()?;
    let offset = usize::try_from(u32::from_be_bytes(*offset)).ok()?;
    rest.get(offset..).map(<[u8]>::to_vec)
}

fn corrupt(e: HeifError) -> EngineError {
    EngineError::Corrupt(format!("HEIF: {e}"))
}

/// Decodes `item` upright, 8 bits per sample, described by the colours
/// `colours` declares (its own, or for a thumbnail its primary image's,
/// which a thumbnail often does not repeat).
fn decode_item(item: &ImageHandle, colours: &ImageHandle) -> Result<Decoded, EngineError> {
    let alpha = item.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let mut options = DecodingOptions::new()
        .ok_or_else(|| EngineError::Corrupt("HEIF: libheif is out of memory".into()))?;
    options.set_convert_hdr_to_8bit(true);
    let image = LibHeif::new()
        .decode(item, ColorSpace::Rgb(chroma), Some(options))
        .map_err(corrupt)?;
    let image = to_dynamic_image(&image, alpha)
        .ok_or_else(|| EngineError::Corrupt("HEIF: decoded image has no pixels".into()))?;
    let colours = if let Some(profile) = colours.color_profile_raw() {
        Colours::Icc(profile.data)
    } else if let Some(nclx) = colours.color_profile_nclx() {
        Colours::Cicp {
            primaries: nclx.color_primaries() as u8,
            transfer: nclx.transfer_characteristics() as u8,
        }
    } else {
        Colours::Srgb
    };
    Ok(Decoded { image, colours })
}

/// Copies libheif's interleaved rows, which may be padded, into an image.
fn to_dynamic_image(image: &Image, alpha: bool) -> Option<DynamicImage> {
    let plane = image.planes().interleaved?;
    let channels: usize = if alpha { 4 } else { 3 };
    let row = plane.width as usize * channels;
    let mut pixels = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        pixels.extend_from_slice(plane.data.get(y * plane.stride..)?.get(..row)?);
    }
    Some(if alpha {
        DynamicImage::ImageRgba8(RgbaImage::from_raw(plane.width, plane.height, pixels)?)
    } else {
        DynamicImage::ImageRgb8(RgbImage::from_raw(plane.width, plane.height, pixels)?)
    })
}

/// Encodes an 8-bit image as AVIF (alpha only when the image has some) with
/// what `embedded` keeps of its source.
pub(super) fn encode_avif(
    img: &DynamicImage,
    encoding: &Encoding,
    embedded: &Embedded,
) -> Result<Vec<u8>, EngineError> {
    let enc = |e: HeifError| EngineError::Encode(format!("AVIF: {e}"));
    let lib = LibHeif::new();
    let mut encoder = lib
        .encoder_for_format(CompressionFormat::Av1)
        .map_err(enc)?;
    let quality = if encoding.lossless {
        EncoderQuality::LossLess
    } else {
        EncoderQuality::Lossy(encoding.quality())
    };
    encoder.set_quality(quality).map_err(enc)?;
    // libheif's libaom encoder takes speeds up to 9; 10 is libaom's
    // real-time mode, which libheif does not offer.
    let speed = i32::from(encoding.speed().min(9));
    encoder
        .set_parameter_value("speed", EncoderParameterValue::Int(speed))
        .map_err(enc)?;
    let chroma = match encoding.subsampling() {
        Subsampling::Half => "420",
        Subsampling::Full => "444",
    };
    encoder
        .set_parameter_value("chroma", EncoderParameterValue::String(chroma.into()))
        .map_err(enc)?;
    let mut image = to_heif_image(img).map_err(enc)?;
    if let Some(icc) = &embedded.icc {
        let profile = ColorProfileRaw::new(color_profile_types::PROF, icc.clone());
        image.set_color_profile_raw(&profile).map_err(enc)?;
    }
    let mut context = HeifContext::new().map_err(enc)?;
    let handle = context
        .encode_image(&image, &mut encoder, None)
        .map_err(enc)?;
    if let Some(exif) = &embedded.exif {
        context.add_exif_metadata(&handle, exif).map_err(enc)?;
    }
    context.write_to_bytes().map_err(enc)
}

fn to_heif_image(img: &DynamicImage) -> Result<Image, HeifError> {
    let (chroma, pixels, channels) = match img {
        DynamicImage::ImageRgba8(rgba) => (RgbChroma::Rgba, rgba.as_raw().as_slice(), 4),
        DynamicImage::ImageRgb8(rgb) => (RgbChroma::Rgb, rgb.as_raw().as_slice(), 3),
        other => return to_heif_image(&DynamicImage::ImageRgb8(other.to_rgb8())),
    };
    let (width, height) = (img.width(), img.height());
    let mut image = Image::new(width, height, ColorSpace::Rgb(chroma))?;
    image.create_plane(Channel::Interleaved, width, height, 8)?;
    let row = width as usize * channels;
    if let Some(plane) = image.planes_mut().interleaved {
        for (y, source) in pixels.chunks_exact(row).enumerate() {
            plane.data[y * plane.stride..][..row].copy_from_slice(source);
        }
    }
    Ok(image)
}
