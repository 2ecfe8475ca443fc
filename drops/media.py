"""A drop's product photo: the checks on upload and the renditions pages show.

Renditions are made once, when the admin saves a new photo, and stored next to the
original under MEDIA_ROOT; requests only build their URLs from the photo's name, so
showing a photo costs no file access and no image work.
"""

import io
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile

from PIL import Image, ImageOps

# Widths in pixels: a card on the list page and the large image on the drop's page
# (about twice their CSS width, for high-density screens). Smaller photos are not
# enlarged.
RENDITION_WIDTHS = {"card": 640, "detail": 1280}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Bigger than any camera's photo; keeps a crafted image from taking the server's memory.
MAX_UPLOAD_PIXELS = 40_000_000
_QUALITY = 82


def rendition_name(photo_name: str, kind: str) -> str:
    """``drops/air.jpg`` -> ``drops/air.card.webp``: derived, so nothing else is stored."""
    path = PurePosixPath(photo_name)
    return str(path.with_name(f"{path.stem}.{kind}.webp"))


def rendition_urls(photo: FieldFile) -> dict[str, str] | None:
    if not photo:
        return None
    return {kind: photo.storage.url(rendition_name(photo.name, kind)) for kind in RENDITION_WIDTHS}


def check_upload(upload) -> None:
    """Refuses an upload too big to be a product photo (the form has checked that it is
    an image)."""
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"The photo is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.", code="too_big"
        )
    # forms.ImageField has opened the image and left it here; only its header was read.
    image = getattr(upload, "image", None)
    if image is not None and image.width * image.height > MAX_UPLOAD_PIXELS:
        raise ValidationError("The photo has too many pixels.", code="too_many_pixels")


def make_renditions(photo: FieldFile) -> list[str]:
    """Writes the card and detail renditions of a saved photo (WebP), replacing any
    earlier ones of the same name; returns their storage names."""
    with photo.open("rb") as source, Image.open(source) as original:
        # Phones store the camera's orientation as an EXIF tag, not in the pixels.
        image = ImageOps.exif_transpose(original)
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    names = []
    for kind, width in RENDITION_WIDTHS.items():
        copy = image.copy()
        copy.thumbnail((width, width * 4), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        copy.save(buffer, "WEBP", quality=_QUALITY, method=4)
        name = rendition_name(photo.name, kind)
        photo.storage.delete(name)
        names.append(photo.storage.save(name, ContentFile(buffer.getvalue())))
    return names
