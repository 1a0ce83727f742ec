"""Treatment records per session: every case's typed facts become one record per session.

For each case: ``session_count`` sessions ``session_interval_weeks`` apart, each with one
zone (the body area when it is a zone, else the whole treated area) at the deepest needle
setting, the last one dated ``weeks_after_last_session`` weeks before the after photo's
capture date (else the recorded date of the last session, else the case's creation). So
every derived value, and every caption built from them, is what it was. The derivation
is written out here rather than imported, so that this migration keeps meaning what it
means when ``gallery.models`` changes.
"""

import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

ZONES = {
    "whole_area": "Whole treated area",
    "forehead": "Forehead",
    "cheeks": "Cheeks",
    "neck": "Neck",
    "chest": "Chest and décolletage",
    "back": "Back",
    "abdomen": "Abdomen",
    "arms": "Arms",
    "thighs": "Thighs",
    "hands": "Hands",
}


def sessions_from_typed_facts(apps, schema_editor):
    Case = apps.get_model("gallery", "Case")
    Photo = apps.get_model("gallery", "Photo")
    TreatmentSession = apps.get_model("gallery", "TreatmentSession")
    SessionZone = apps.get_model("gallery", "SessionZone")
    first_after = {}
    for case_id, taken in (
        Photo.objects.filter(role="after", taken_at__isnull=False)
        .order_by("case_id", "taken_at")
        .values_list("case_id", "taken_at")
    ):
        first_after.setdefault(case_id, timezone.localtime(taken).date())
    for case in Case.objects.filter(sessions__isnull=True).order_by("pk").iterator():
        weeks, count, interval = (
            case.weeks_after_last_session,
            case.session_count,
            case.session_interval_weeks,
        )
        if case.pk in first_after:
            last = first_after[case.pk] - timedelta(weeks=weeks)
        elif case.last_session_on is not None:
            last = case.last_session_on
        else:
            last = timezone.localtime(case.created_at).date() - timedelta(weeks=weeks)
        zone = case.body_area if case.body_area in ZONES else "whole_area"
        sessions = TreatmentSession.objects.bulk_create(
            TreatmentSession(
                case=case,
                performed_on=last - timedelta(weeks=interval * (count - 1 - n)),
                device=case.device,
            )
            for n in range(count)
        )
        SessionZone.objects.bulk_create(
            SessionZone(session=s, zone=zone, needle_depth_mm=case.needle_depth_mm)
            for s in sessions
        )
        protocol = [
            {
                "number": n + 1,
                "week": interval * n,
                "device": case.device,
                "zones": [
                    {
                        "zone": zone,
                        "name": ZONES[zone],
                        "needle_depth_mm": f"{case.needle_depth_mm:.2f}",
                        "rf_energy": None,
                        "rf_passes": None,
                    }
                ],
            }
            for n in range(count)
        ]
        Case.objects.filter(pk=case.pk).update(
            last_session_on=last, weeks_after_entered=weeks, protocol=protocol
        )


class Migration(migrations.Migration):

    dependencies = [
        ('gallery', '0011_photo_rotation'),
    ]

    operations = [
        migrations.AddField(
            model_name='case',
            name='protocol',
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name='case',
            name='weeks_after_entered',
            field=models.PositiveSmallIntegerField(blank=True, help_text="Used only when the after photo has no capture date; otherwise the weeks are counted from the photo's own date.", null=True, validators=[django.core.validators.MaxValueValidator(520)], verbose_name='weeks after the last session'),
        ),
        migrations.AlterField(
            model_name='case',
            name='last_session_on',
            field=models.DateField(blank=True, null=True, verbose_name='date of the last session'),
        ),
        migrations.AlterField(
            model_name='case',
            name='zone_depths',
            field=models.CharField(blank=True, help_text="Anything the sessions' zones do not say, e.g. stamping on the scar edges.", max_length=200, verbose_name='other notes on depth'),
        ),
        migrations.CreateModel(
            name='TreatmentSession',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('performed_on', models.DateField(verbose_name='date')),
                ('device', models.CharField(blank=True, max_length=200)),
                ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='gallery.case')),
            ],
            options={
                'ordering': ['case', 'performed_on', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='SessionZone',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('zone', models.CharField(choices=[('whole_area', 'Whole treated area'), ('forehead', 'Forehead'), ('around_eyes', 'Around the eyes'), ('nose', 'Sides of the nose'), ('cheeks', 'Cheeks'), ('around_mouth', 'Around the mouth'), ('chin_jawline', 'Chin and jawline'), ('neck', 'Neck'), ('chest', 'Chest and décolletage'), ('back', 'Back'), ('abdomen', 'Abdomen'), ('arms', 'Arms'), ('thighs', 'Thighs'), ('hands', 'Hands'), ('scar', 'Scar')], max_length=20)),
                ('needle_depth_mm', models.DecimalField(decimal_places=2, max_digits=3, validators=[django.core.validators.MinValueValidator(Decimal('0.10'), 'Needle depth must be at least 0.1 mm.'), django.core.validators.MaxValueValidator(Decimal('4.00'), 'Needle depth must be at most 4.0 mm.')], verbose_name='needle depth (mm)')),
                ('rf_energy', models.PositiveSmallIntegerField(blank=True, help_text="The device's own energy setting (RF microneedling only).", null=True, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(100)], verbose_name='RF energy level')),
                ('rf_passes', models.PositiveSmallIntegerField(blank=True, null=True, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(10)], verbose_name='RF passes')),
                ('session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='zones', to='gallery.treatmentsession')),
            ],
            options={
                'ordering': ['session', 'pk'],
            },
        ),
        migrations.AddConstraint(
            model_name='treatmentsession',
            constraint=models.UniqueConstraint(fields=('case', 'performed_on'), name='gallery_treatmentsession_one_per_day'),
        ),
        migrations.AddConstraint(
            model_name='sessionzone',
            constraint=models.UniqueConstraint(fields=('session', 'zone'), name='gallery_sessionzone_one_per_zone'),
        ),
        migrations.AddConstraint(
            model_name='sessionzone',
            constraint=models.CheckConstraint(condition=models.Q(('needle_depth_mm__gte', Decimal('0.10')), ('needle_depth_mm__lte', Decimal('4.00'))), name='gallery_sessionzone_depth_range'),
        ),
        migrations.AddConstraint(
            model_name='sessionzone',
            constraint=models.CheckConstraint(condition=models.Q(('rf_energy__isnull', True), models.Q(('rf_energy__gte', 1), ('rf_energy__lte', 100)), _connector='OR'), name='gallery_sessionzone_rf_energy_range'),
        ),
        migrations.AddConstraint(
            model_name='sessionzone',
            constraint=models.CheckConstraint(condition=models.Q(('rf_passes__isnull', True), models.Q(('rf_passes__gte', 1), ('rf_passes__lte', 10)), _connector='OR'), name='gallery_sessionzone_rf_passes_range'),
        ),
        # Going back drops the records; the typed columns still hold every fact.
        migrations.RunPython(sessions_from_typed_facts, migrations.RunPython.noop),
    ]
