"""Product identity: photos uploaded in the admin, their renditions, and how pages and
the API show a drop with and without one. Real Pillow images in a temporary MEDIA_ROOT."""

import io
import re
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

import pytest
from PIL import Image

from accounts.tests.factories import UserFactory
from drops import media
from drops.models import FALLBACK_ART_COLOURS, Drop
from drops.tests.factories import DropFactory
from shop.tests.test_admin import drop_form

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def jpeg(width: int, height: int, *, orientation: int | None = None, name="shoe.jpg"):
    image = Image.new("RGB", (width, height), (200, 30, 40))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation  # EXIF Orientation, as a phone camera writes it
    image.save(buffer, "JPEG", exif=exif)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def files_under(root) -> dict[str, int]:
    """Every stored file with its modification time, to see what a request wrote."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def sizes_of_renditions(drop: Drop) -> dict[str, tuple[int, int]]:
    sizes = {}
    for kind in media.RENDITION_WIDTHS:
        with drop.photo.storage.open(media.rendition_name(drop.photo.name, kind)) as f:
            with Image.open(f) as image:
                assert image.format == "WEBP"
                sizes[kind] = image.size
    return sizes


def add_drop_with_photo(admin_client, upload, **fields) -> Drop:
    response = admin_client.post(reverse("admin:drops_drop_add"), drop_form(photo=upload, **fields))
    assert response.status_code == 302, response.content
    return Drop.objects.get()


def test_admin_saves_identity_and_makes_each_rendition_once(admin_client, media_root):
    drop = add_drop_with_photo(
        admin_client,
        jpeg(2000, 1500),
        colourway="Varsity Red/Black",
        style_code="DZ5485-612",
        description="Aged leather, yellowed midsole.",
    )

    assert (drop.colourway, drop.style_code) == ("Varsity Red/Black", "DZ5485-612")
    assert drop.description == "Aged leather, yellowed midsole."
    assert drop.available_stock == drop.total_stock == 20
    assert sizes_of_renditions(drop) == {"card": (640, 480), "detail": (1280, 960)}
    stored = files_under(media_root)
    assert len(stored) == 3  # the original and its two renditions

    # Showing the drop everywhere, and saving it again without a new photo, writes nothing.
    admin_client.get("/")
    admin_client.get(drop.get_absolute_url())
    admin_client.get("/api/drops")
    admin_client.get(reverse("admin:drops_drop_change", args=[drop.pk]))
    response = admin_client.post(
        reverse("admin:drops_drop_change", args=[drop.pk]),
        drop_form(name="Renamed", colourway="Varsity Red/Black"),
    )
    assert response.status_code == 302, response.content
    assert Drop.objects.get().name == "Renamed"
    assert files_under(media_root) == stored


def test_a_new_photo_gets_new_renditions(admin_client, media_root):
    drop = add_drop_with_photo(admin_client, jpeg(800, 600))
    first = drop.photo_urls

    response = admin_client.post(
        reverse("admin:drops_drop_change", args=[drop.pk]),
        drop_form(photo=jpeg(1600, 900)),
    )

    assert response.status_code == 302, response.content
    drop.refresh_from_db()
    assert drop.photo_urls != first
    assert sizes_of_renditions(drop) == {"card": (640, 360), "detail": (1280, 720)}


def test_small_photos_are_not_enlarged_and_phone_rotation_is_applied(admin_client):
    # Stored 1500x1000 with "rotate 90° clockwise" (6): the shoe stands 1000x1500.
    drop = add_drop_with_photo(admin_client, jpeg(1500, 1000, orientation=6))

    assert sizes_of_renditions(drop) == {"card": (640, 960), "detail": (1000, 1500)}


def test_admin_refuses_a_file_that_is_not_an_image(admin_client, media_root):
    fake = SimpleUploadedFile("shoe.jpg", b"%PDF-1.7 not a photo", content_type="image/jpeg")

    response = admin_client.post(reverse("admin:drops_drop_add"), drop_form(photo=fake))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["photo"] and "valid image" in errors["photo"][0]
    assert not Drop.objects.exists()
    assert not media_root.exists() or files_under(media_root) == {}


def test_admin_refuses_an_oversized_photo(admin_client, monkeypatch, media_root):
    monkeypatch.setattr(media, "MAX_UPLOAD_BYTES", 1024)

    response = admin_client.post(reverse("admin:drops_drop_add"), drop_form(photo=jpeg(640, 480)))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["photo"] and "larger than" in errors["photo"][0]
    assert not Drop.objects.exists()


def test_admin_refuses_a_photo_with_too_many_pixels(admin_client, monkeypatch):
    monkeypatch.setattr(media, "MAX_UPLOAD_PIXELS", 640 * 480 - 1)

    response = admin_client.post(reverse("admin:drops_drop_add"), drop_form(photo=jpeg(640, 480)))

    assert response.status_code == 200
    assert "too many pixels" in response.context["adminform"].form.errors["photo"][0]


def test_api_and_pages_show_the_photo_and_identity(admin_client, client, settings):
    drop = add_drop_with_photo(
        admin_client,
        jpeg(1000, 700),
        colourway="White/Black",
        style_code="DD1391-100",
        description="Two-tone leather.",
    )
    card = settings.MEDIA_URL + drop.photo.name.rsplit(".", 1)[0]  # /media/drops/shoe

    [item] = client.get("/api/drops").json()
    assert item["photo"] == {"card": f"{card}.card.webp", "detail": f"{card}.detail.webp"}
    assert (item["colourway"], item["styleCode"]) == ("White/Black", "DD1391-100")
    assert item["description"] == "Two-tone leather."

    listing = client.get("/").content.decode()
    assert f'src="{card}.card.webp"' in listing
    page = client.get(drop.get_absolute_url()).content.decode()
    assert f'src="{card}.detail.webp"' in page
    for html in (listing, page):
        assert "White/Black" in html and "DD1391-100" in html and "Two-tone leather." in html
        assert html.count('data-testid="drop-photo"') == 1


def test_drop_without_photo_is_null_in_the_api_and_drawn_on_the_pages(client):
    drop = DropFactory()

    [item] = client.get("/api/drops").json()
    assert item["photo"] is None
    page = client.get(drop.get_absolute_url()).content.decode()
    assert 'href="#sneaker"' in page and 'data-testid="drop-photo"' not in page


ART = re.compile(r'data-drop-id="(\d+)"[^>]*>\s*<div class="card-art" data-art="(\d+)"')


def test_fallback_colour_is_fixed_by_drop_id_not_list_position(client):
    now = timezone.now()
    drops = [DropFactory(drop_start_time=now - timedelta(minutes=m)) for m in range(1, 7)]

    first = dict(ART.findall(client.get("/").content.decode()))
    # Reverse the list order (it follows the start time) and look again.
    for m, drop in enumerate(drops):
        Drop.objects.filter(pk=drop.pk).update(drop_start_time=now - timedelta(minutes=10 - m))
    html = client.get("/").content.decode()
    second = dict(ART.findall(html))

    ids = [str(d.pk) for d in drops]
    assert list(first) == ids[::-1] and list(second) == ids  # the order did change
    assert first == second == {str(d.pk): str(d.pk % FALLBACK_ART_COLOURS) for d in drops}
    assert len(set(first.values())) == FALLBACK_ART_COLOURS  # six drops, every colour used
    for drop in drops:
        detail = client.get(drop.get_absolute_url()).content.decode()
        assert f'class="detail-art" data-art="{drop.pk % FALLBACK_ART_COLOURS}"' in detail
