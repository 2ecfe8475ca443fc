import django.db.models.deletion
from django.db import migrations, models


def hold_the_drops_one_size(apps, schema_editor):
    # Every drop has exactly one size here (drops 0003 made it).
    schema_editor.execute(
        "UPDATE reservations_reservation r SET size_id = s.id"
        "  FROM drops_size s WHERE s.drop_id = r.drop_id"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("drops", "0003_sizes"),
        ("reservations", "0004_idempotency_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="reservation",
            name="size",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="reservations",
                to="drops.size",
            ),
        ),
        migrations.RunPython(hold_the_drops_one_size, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="reservation",
            name="size",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="reservations",
                to="drops.size",
            ),
        ),
        migrations.RemoveIndex(model_name="reservation", name="reservation_active_drop_expiry"),
        migrations.AddIndex(
            model_name="reservation",
            index=models.Index(
                condition=models.Q(("status", "ACTIVE")),
                fields=["size", "expires_at"],
                name="reservation_active_size_expiry",
            ),
        ),
    ]
