from django import forms
from django.contrib import admin
from django.utils.html import format_html

from drops import media
from drops.models import Drop
from reservations import services
from reservations.exceptions import StockError

EDITABLE_FIELDS = ["name", "price", "drop_start_time", "drop_end_time", "purchase_limit"]
# What the drop is, as opposed to how it sells; saved with the drop, never stock.
IDENTITY_FIELDS = ["colourway", "style_code", "description", "photo"]


class DropAdminForm(forms.ModelForm):
    class Meta:
        model = Drop
        fields = ["name", *IDENTITY_FIELDS, "price", "total_stock", *EDITABLE_FIELDS[2:]]

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        # A new upload only: the stored photo (or a cleared one) was checked when it came.
        if photo and "photo" in self.changed_data and hasattr(photo, "size"):
            media.check_upload(photo)
        return photo

    def clean_total_stock(self):
        total = self.cleaned_data["total_stock"]
        if self.instance.pk is not None and total != self.instance.total_stock:
            # Locks the drop for the rest of the admin's transaction, so the save
            # below applies exactly what was validated here.
            try:
                services.lock_for_stock_edit(drop_id=self.instance.pk, total_stock=total)
            except StockError as exc:
                raise forms.ValidationError(exc.message) from None
        return total


@admin.register(Drop)
class DropAdmin(admin.ModelAdmin):
    form = DropAdminForm
    list_display = [
        "name",
        "price",
        "available_stock",
        "total_stock",
        "drop_start_time",
        "drop_end_time",
        "purchase_limit",
    ]
    list_filter = ["drop_start_time"]
    search_fields = ["name"]
    readonly_fields = [
        "photo_preview",
        "available_stock",
        "stock_version",
        "created_at",
        "updated_at",
    ]
    date_hierarchy = "drop_start_time"

    @admin.display(description="Card image")
    def photo_preview(self, obj):
        urls = media.rendition_urls(obj.photo)
        if urls is None:
            return "No photo: the shop shows a drawn shoe."
        return format_html('<img src="{}" alt="" style="max-width: 320px">', urls["card"])

    def save_model(self, request, obj, form, change):
        self._save_drop(obj, form, change)
        # Once per upload: requests only link to the files made here.
        if "photo" in form.changed_data and obj.photo:
            media.make_renditions(obj.photo)

    def _save_drop(self, obj, form, change):
        # Stock goes through the services module; only the other fields are saved here,
        # so a stale available_stock from the form can never overwrite the real one.
        if not change:
            created = services.create_drop(
                name=obj.name,
                price=obj.price,
                total_stock=obj.total_stock,
                drop_start_time=obj.drop_start_time,
                drop_end_time=obj.drop_end_time,
                purchase_limit=obj.purchase_limit,
            )
            # The admin goes on with obj (log entry, redirect): it is the created drop.
            obj.pk, obj.available_stock = created.pk, created.available_stock
            # The rest of the form (and the uploaded photo, stored on this save) goes
            # onto the row just created.
            obj.save(update_fields=IDENTITY_FIELDS)
            return
        obj.save(update_fields=[*EDITABLE_FIELDS, *IDENTITY_FIELDS, "updated_at"])
        if "total_stock" in form.changed_data:
            services.set_total_stock(drop_id=obj.pk, total_stock=obj.total_stock)
