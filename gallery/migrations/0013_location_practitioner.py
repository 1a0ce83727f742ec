import django.db.models.deletion
from django.db import migrations, models

import gallery.models
from gallery import jurisdictions


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0012_treatment_sessions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="treatment",
            name="min_weeks_after",
            field=models.PositiveSmallIntegerField(
                default=4,
                help_text="The earliest number of weeks after the last session that an after "
                "photo is meaningful (a location's country may ask for more).",
            ),
        ),
        migrations.AddField(
            model_name="treatment",
            name="prescription_only",
            field=models.BooleanField(
                default=False,
                help_text="e.g. botulinum toxin. Some countries forbid advertising it to the "
                "public: cases of it at a location there are never public "
                "(gallery/jurisdictions.py).",
                verbose_name="involves a prescription-only medicine",
            ),
        ),
        migrations.CreateModel(
            name="Location",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("slug", models.SlugField(unique=True)),
                ("address", models.TextField(blank=True)),
                (
                    "country",
                    models.CharField(
                        choices=jurisdictions.country_choices(),
                        help_text="Selects the advertising rules of the location's cases.",
                        max_length=2,
                    ),
                ),
                (
                    "booking_url",
                    models.URLField(
                        help_text="Where the consultation button goes; the case's id is added as ?case=.",
                        max_length=300,
                        verbose_name="booking URL",
                    ),
                ),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="Practitioner",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
                ("slug", models.SlugField(unique=True)),
                (
                    "credentials",
                    models.CharField(
                        blank=True,
                        help_text="As the public should read them, e.g. Dermatologist.",
                        max_length=200,
                    ),
                ),
                (
                    "registration_number",
                    models.CharField(
                        blank=True, help_text="e.g. GMC 1234567, Ahpra MED0001234567.", max_length=50
                    ),
                ),
                (
                    "photo",
                    models.ImageField(
                        blank=True,
                        max_length=200,
                        storage=gallery.models._public_storage,
                        upload_to="practitioners/",
                    ),
                ),
                ("locations", models.ManyToManyField(related_name="practitioners", to="gallery.location")),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.RenameField(model_name="case", old_name="practitioner", new_name="practitioner_name"),
        migrations.AddField(
            model_name="case",
            name="location",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to="gallery.location",
            ),
        ),
        migrations.AddField(
            model_name="case",
            name="practitioner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="cases",
                to="gallery.practitioner",
            ),
        ),
    ]
