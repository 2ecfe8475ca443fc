import django.db.models.deletion
from django.db import migrations, models

# Every drop sold so far had one stock: it becomes the drop's one size, "One size".
ONE_SIZE = "One size"


def one_size_per_drop(apps, schema_editor):
    Drop = apps.get_model("drops", "Drop")
    Size = apps.get_model("drops", "Size")
    Size.objects.bulk_create(
        Size(
            drop_id=drop.pk,
            label=ONE_SIZE,
            total_stock=drop.total_stock,
            available_stock=drop.available_stock,
            stock_version=drop.stock_version,
        )
        for drop in Drop.objects.only("pk", "total_stock", "available_stock", "stock_version")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("drops", "0002_product_identity"),
    ]

    operations = [
        migrations.CreateModel(
            name="Size",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "label",
                    models.CharField(help_text='As buyers see it, e.g. "US 9.5".', max_length=20),
                ),
                ("position", models.PositiveSmallIntegerField(default=0)),
                ("total_stock", models.PositiveIntegerField()),
                ("available_stock", models.PositiveIntegerField()),
                ("stock_version", models.BigIntegerField(default=0, editable=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "drop",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sizes",
                        to="drops.drop",
                    ),
                ),
            ],
            options={
                "ordering": ["position", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("drop", "label"), name="size_label_unique_per_drop"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("available_stock__lte", models.F("total_stock"))),
                        name="size_available_within_total",
                    ),
                ],
            },
        ),
        migrations.RunPython(one_size_per_drop, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="drop", name="drop_available_within_total"),
        migrations.RemoveConstraint(model_name="drop", name="drop_total_at_least_one"),
        migrations.RemoveField(model_name="drop", name="available_stock"),
        migrations.RemoveField(model_name="drop", name="total_stock"),
        migrations.RemoveField(model_name="drop", name="stock_version"),
    ]
