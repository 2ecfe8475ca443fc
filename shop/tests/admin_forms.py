"""POST data of the drop admin's form and its size rows, as the browser sends them."""

from django.utils import timezone

from drops.models import Drop

SIZES = "sizes"  # the size inline's prefix: the related name of Size.drop


def drop_form(*, drop: Drop | None = None, sizes=None, new=(), **overrides) -> dict:
    """The drop form with its size rows.

    ``drop``: the drop being changed (its fields are the form's, and its sizes the
    rows); ``sizes``: {label: {field: value}} changes to its rows ("DELETE": "on" to
    delete one); ``new``: new rows as dicts of label, total_stock (and position).
    """
    now = timezone.now()
    data = {
        "name": drop.name if drop else "Dunk Low Panda",
        "price": str(drop.price) if drop else "110.00",
        "drop_start_time_0": now.strftime("%Y-%m-%d"),
        "drop_start_time_1": now.strftime("%H:%M:%S"),
        "drop_end_time_0": "",
        "drop_end_time_1": "",
        "purchase_limit": str(drop.purchase_limit) if drop else "1",
        "run_step": "0.5",
    }
    existing = list(drop.sizes.all()) if drop else []
    data |= {
        f"{SIZES}-TOTAL_FORMS": str(len(existing) + len(new)),
        f"{SIZES}-INITIAL_FORMS": str(len(existing)),
        f"{SIZES}-MIN_NUM_FORMS": "0",
        f"{SIZES}-MAX_NUM_FORMS": "1000",
    }
    changes = sizes or {}
    for index, size in enumerate(existing):
        row = {
            "id": size.pk,
            "drop": size.drop_id,
            "label": size.label,
            "position": size.position,
            "total_stock": size.total_stock,
            **changes.get(size.label, {}),
        }
        data |= {f"{SIZES}-{index}-{key}": str(value) for key, value in row.items()}
    for index, row in enumerate(new, start=len(existing)):
        row = {"position": 0, **row}
        data |= {f"{SIZES}-{index}-{key}": str(value) for key, value in row.items()}
    data.update(overrides)
    return data


def form_errors(response) -> list[str]:
    """Every error the admin page shows: the drop form's and the size rows'."""
    errors = [str(e) for field in response.context["adminform"].form.errors.values() for e in field]
    for formset in response.context["inline_admin_formsets"]:
        errors += [str(e) for e in formset.formset.non_form_errors()]
        errors += [str(e) for form in formset.formset.errors for f in form.values() for e in f]
    return errors
