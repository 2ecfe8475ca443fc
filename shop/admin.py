from decimal import Decimal

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from drops import media
from drops.models import Drop, Size, size_run
from reservations import services
from reservations.exceptions import StockError

EDITABLE_FIELDS = ["name", "price", "drop_start_time", "drop_end_time", "purchase_limit"]
# What the drop is, as opposed to how it sells; saved with the drop, never stock.
IDENTITY_FIELDS = ["colourway", "style_code", "description", "photo"]
# More than any real run (US 4 to 18 in half sizes is 29): a typo, not a run.
MAX_RUN_SIZES = 40


# As narrow as the admin's number fields, so the run reads as one line.
SIZE_INPUT = forms.NumberInput(attrs={"step": "0.5", "class": "vIntegerField"})


class SizeRunFields(forms.Form):
    """A whole US run at once ("7 to 12 in half sizes, 10 pairs each"); each size can
    be given its own stock in the size rows once the run exists."""

    run_from = forms.DecimalField(
        label="Size run from",
        required=False,
        min_value=0,
        max_digits=4,
        decimal_places=1,
        widget=SIZE_INPUT,
    )
    run_to = forms.DecimalField(
        label="to", required=False, min_value=0, max_digits=4, decimal_places=1, widget=SIZE_INPUT
    )
    run_step = forms.TypedChoiceField(
        label="in",
        choices=[("0.5", "half sizes"), ("1", "whole sizes")],
        coerce=Decimal,
        initial="0.5",
        required=False,
    )
    run_stock = forms.IntegerField(
        label="Pairs per size", required=False, min_value=0, max_value=1_000_000
    )

    def clean(self):
        cleaned = super().clean()
        self.run_sizes = run_sizes(cleaned, self)
        return cleaned


def run_sizes(cleaned: dict, form: forms.Form) -> list[tuple[str, int]]:
    """The (label, pairs) of the requested run; [] if none was asked for. Problems go
    onto the form as errors."""
    start, end, stock = (cleaned.get(name) for name in ("run_from", "run_to", "run_stock"))
    if start is None and end is None and stock is None:
        return []
    for name, value in (("run_from", start), ("run_to", end), ("run_stock", stock)):
        if value is None and name not in form.errors:
            form.add_error(name, "A size run needs its first and last size and its pairs.")
    if form.errors:
        return []
    step = cleaned.get("run_step") or Decimal("0.5")
    if end < start:
        form.add_error("run_to", "The last size must not be below the first.")
        return []
    if (end - start) % step:
        form.add_error("run_to", f"Not reached from {start:g} in steps of {step:g}.")
        return []
    if (end - start) / step + 1 > MAX_RUN_SIZES:
        form.add_error("run_to", f"At most {MAX_RUN_SIZES} sizes at once.")
        return []
    return [(label, stock) for label in size_run(float(start), float(end), float(step))]


class DropAdminForm(forms.ModelForm, SizeRunFields):
    # On the add form only: a product sold without sizes gets one size, "One size".
    total_stock = forms.IntegerField(
        label="Stock, if one size",
        required=False,
        min_value=1,
        max_value=1_000_000,
        help_text="For a product without sizes. Leave empty when giving a size run or sizes below.",
    )

    class Meta:
        model = Drop
        fields = ["name", *IDENTITY_FIELDS, "price", *EDITABLE_FIELDS[2:]]

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        # A new upload only: the stored photo (or a cleared one) was checked when it came.
        if photo and "photo" in self.changed_data and hasattr(photo, "size"):
            media.check_upload(photo)
        return photo

    def clean(self):
        cleaned = super().clean()  # ModelForm's; it does not go on to SizeRunFields.clean
        self.run_sizes = run_sizes(cleaned, self)
        if self.run_sizes and cleaned.get("total_stock"):
            self.add_error("total_stock", "Give either a size run or one size's stock, not both.")
        if self.run_sizes and self.instance.pk is not None:
            taken = set(
                self.instance.sizes.filter(
                    label__in=[label for label, _ in self.run_sizes]
                ).values_list("label", flat=True)
            )
            if taken:
                self.add_error("run_from", f"The drop has {', '.join(sorted(taken))} already.")
        return cleaned


class SizeInlineForm(forms.ModelForm):
    class Meta:
        model = Size
        fields = ["label", "position", "total_stock"]

    def clean_label(self):
        label = self.cleaned_data["label"].strip()
        if self.instance.pk is not None and label != self.instance.label:
            if self.instance.reservations.exists():
                # A buyer's hold or order names the size; it must stay what they chose.
                raise forms.ValidationError(
                    f"Buyers hold or bought {self.instance.label}: its label stays."
                )
        return label

    def clean_total_stock(self):
        total = self.cleaned_data["total_stock"]
        if self.instance.pk is not None and total != self.instance.total_stock:
            # Locks the size for the rest of the admin's transaction, so the save below
            # applies exactly what was validated here.
            try:
                services.lock_for_stock_edit(size_id=self.instance.pk, total_stock=total)
            except StockError as exc:
                raise forms.ValidationError(exc.message) from None
        return total


class SizeFormSet(forms.BaseInlineFormSet):
    """Checks across the size rows and the drop form's run and one-size stock."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        new = [f for f in self.extra_forms if f.has_changed() and not self.is_deleted(f)]
        kept = [f for f in self.initial_forms if not self.is_deleted(f)]
        deleted = [f for f in self.initial_forms if self.is_deleted(f)]
        # The drop form's own fields, from the same POST; its errors are shown there.
        run = SizeRunFields(self.data)
        run_sizes = run.run_sizes if run.is_valid() else []
        rows = {f.cleaned_data["label"] for f in [*kept, *new]}
        clash = sorted(label for label, _ in run_sizes if label in rows)
        if clash:
            raise forms.ValidationError(f"{', '.join(clash)} is in the size run already.")
        if self.instance.pk is None:
            one_size = self.data.get("total_stock")
            if one_size and new:
                raise forms.ValidationError("Give either sizes or one size's stock, not both.")
            if not (one_size or new or run_sizes):
                raise forms.ValidationError(
                    "A drop needs its sizes: a size run, size rows here, or a stock if one size."
                )
            units = sum(stock for _, stock in run_sizes) + sum(
                f.cleaned_data["total_stock"] for f in new
            )
            if not one_size and units == 0:
                raise forms.ValidationError("A drop needs at least one pair in stock.")
        elif len(deleted) == self.instance.sizes.count() and not (new or run_sizes):
            raise forms.ValidationError("A drop keeps at least one size.")

    def is_deleted(self, form) -> bool:
        return self.can_delete and self._should_delete_form(form)


class SizeInline(admin.TabularInline):
    model = Size
    form = SizeInlineForm
    formset = SizeFormSet
    fields = ["label", "position", "total_stock", "available_stock", "stock_version"]
    readonly_fields = ["available_stock", "stock_version"]
    extra = 1
    verbose_name_plural = "Sizes (smallest first; new sizes go after the last)"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class SizeRowForm(formset.form):
            def hand_clean_DELETE(self):
                # Django's own check names every hold (hundreds, in a drop); one
                # sentence says why and what to do instead. Checked again, under the
                # size's lock, by services.remove_size when the form is saved.
                size = self.instance
                if (
                    self.cleaned_data.get("DELETE")
                    and size.pk
                    and (size.stock_version or size.reservations.exists())
                ):
                    raise forms.ValidationError(
                        f"{size.label} cannot be deleted: it was held or sold, or its stock "
                        "was changed. Set its stock to what is held and sold instead; none "
                        "is then offered."
                    )

        formset.form = SizeRowForm
        return formset


@admin.register(Drop)
class DropAdmin(admin.ModelAdmin):
    form = DropAdminForm
    inlines = [SizeInline]
    list_display = [
        "name",
        "price",
        "stock",
        "drop_start_time",
        "drop_end_time",
        "purchase_limit",
    ]
    list_filter = ["drop_start_time"]
    search_fields = ["name"]
    date_hierarchy = "drop_start_time"

    def get_queryset(self, request):
        # The stock columns are sums over each drop's sizes: one query for all of them.
        return super().get_queryset(request).prefetch_related("sizes")

    def get_fieldsets(self, request, obj=None):
        run = [("run_from", "run_to", "run_step"), "run_stock"]
        product = ["name", *IDENTITY_FIELDS[:3], "photo", "photo_preview"]
        if obj is None:
            sizes = (
                "Sizes",
                {
                    "fields": [*run, "total_stock"],
                    "description": "A US size run (each size can then get its own pairs "
                    "in the rows below), size rows below, or for a product without sizes "
                    "its stock.",
                },
            )
        else:
            sizes = ("Add a size run", {"fields": run, "description": "US sizes, after the last."})
        return [
            (None, {"fields": product}),
            ("Sale", {"fields": EDITABLE_FIELDS[1:]}),
            *([("Stock", {"fields": ["stock"]})] if obj is not None else []),
            sizes,
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["photo_preview", "stock", "created_at", "updated_at"]

    @admin.display(description="Available / total")
    def stock(self, obj):
        if obj.pk is None:
            return "-"
        sizes = len(obj.sizes.all())
        return f"{obj.available_stock} / {obj.total_stock} in {sizes} size{'s' * (sizes != 1)}"

    @admin.display(description="Card image")
    def photo_preview(self, obj):
        urls = media.rendition_urls(obj.photo)
        if urls is None:
            return "No photo: the shop shows a drawn shoe."
        return format_html('<img src="{}" alt="" style="max-width: 320px">', urls["card"])

    def save_model(self, request, obj, form, change):
        # Stock goes through the services module; only the other fields are saved here,
        # so a stale stock from the form can never overwrite the real one. A new drop
        # is created in save_related, where its size rows are at hand: create_drop
        # makes the drop and all its sizes in one go.
        if change:
            obj.save(update_fields=[*EDITABLE_FIELDS, *IDENTITY_FIELDS, "updated_at"])
            self._make_renditions(obj, form)

    def save_related(self, request, form, formsets, change):
        rows = next(formset for formset in formsets if formset.model is Size)
        new = [f for f in rows.extra_forms if f.has_changed() and not rows.is_deleted(f)]
        sizes = [
            *form.run_sizes,
            *((f.cleaned_data["label"], f.cleaned_data["total_stock"]) for f in new),
        ]
        if change:
            self._save_size_rows(rows)
            added = services.add_sizes(drop_id=form.instance.pk, sizes=sizes) if sizes else []
        else:
            added = self._create_drop(form, sizes)
        # A new row's own position, when one was typed; else it goes after the last size.
        for size, row in zip(added[len(form.run_sizes) :], new, strict=True):
            if row.cleaned_data["position"]:
                Size.objects.filter(pk=size.pk).update(position=row.cleaned_data["position"])
        # What changed, for the admin's log entry only: everything is stored above.
        rows.save(commit=False)

    def _create_drop(self, form, sizes: list[tuple[str, int]]) -> list[Size]:
        obj = form.instance
        one_size = form.cleaned_data.get("total_stock")
        created = services.create_drop(
            name=obj.name,
            price=obj.price,
            total_stock=one_size if not sizes else None,
            sizes=sizes or None,
            drop_start_time=obj.drop_start_time,
            drop_end_time=obj.drop_end_time,
            purchase_limit=obj.purchase_limit,
        )
        # The admin goes on with obj (log entry, redirect): it is the created drop.
        obj.pk = created.pk
        # The rest of the form (and the uploaded photo, stored on this save) goes onto
        # the row just created.
        obj.save(update_fields=IDENTITY_FIELDS)
        self._make_renditions(obj, form)
        return list(created.sizes.all()) if sizes else []

    def _save_size_rows(self, rows) -> None:
        relabelled = [
            row
            for row in rows.initial_forms
            if "label" in row.changed_data and not rows.is_deleted(row)
        ]
        # Labels are unique per drop at every statement, and the formset has checked the
        # new ones against each other: park the changed ones first, so that two sizes
        # may swap labels in one save.
        for row in relabelled:
            Size.objects.filter(pk=row.instance.pk).update(label=f"~{row.instance.pk}")
        for row in rows.initial_forms:
            size = row.instance
            if rows.is_deleted(row):
                # Checked by the row's form (SizeInline): nobody holds or bought it.
                services.remove_size(size_id=size.pk)
                continue
            if {"label", "position"} & set(row.changed_data):
                Size.objects.filter(pk=size.pk).update(label=size.label, position=size.position)
            if "total_stock" in row.changed_data:
                # Locked since the form's clean (lock_for_stock_edit).
                services.set_total_stock(size_id=size.pk, total_stock=size.total_stock)

    def _make_renditions(self, obj, form) -> None:
        # Once per upload: requests only link to the files made here.
        if "photo" in form.changed_data and obj.photo:
            media.make_renditions(obj.photo)
