import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0014_practitioners_from_names"),
    ]

    operations = [
        # A default first, so that going back can add the column to a table with rows
        # (0014 fills it again from the practitioners).
        migrations.AlterField(
            model_name="case",
            name="practitioner_name",
            field=models.CharField(default="", max_length=200),
        ),
        migrations.RemoveField(model_name="case", name="practitioner_name"),
        migrations.RemoveField(model_name="case", name="practitioner_credentials"),
        migrations.AlterField(
            model_name="case",
            name="location",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to="gallery.location",
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="practitioner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to="gallery.practitioner",
            ),
        ),
    ]
