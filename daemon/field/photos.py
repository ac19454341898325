"""A field report's photo: it must decode as a JPEG or PNG (Pillow, not magic bytes), and what
is stored is the picture re-encoded from its pixels, so metadata (EXIF with the phone's GPS
position) and anything appended to the file (a script behind a valid image) are gone."""
from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

FORMATS = {"JPEG": "jpg", "PNG": "png"}
MAX_PIXELS = 50_000_000  # a 50 MP phone camera; more is a decompression bomb
JPEG_QUALITY = 90


def clean(raw: bytes) -> tuple[bytes, str]:
    """(the photo re-encoded in its own format, its file extension); ValueError with the
    reason if it is no photo."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=list(FORMATS)) as img:
                fmt = img.format
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError(f"{img.width}×{img.height} pixels; at most {MAX_PIXELS:,}")
                img.load()
                out = io.BytesIO()
                if fmt == "JPEG":
                    img = img if img.mode in ("RGB", "L") else img.convert("RGB")
                    img.save(out, "JPEG", quality=JPEG_QUALITY)
                else:
                    img.save(out, "PNG")
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError("not a JPEG or PNG image") from None
    except (OSError, SyntaxError, EOFError) as e:  # truncated or corrupt
        raise ValueError(f"damaged image: {e}"[:200]) from None
    return out.getvalue(), FORMATS[fmt]
