from django.contrib.auth.management import create_permissions
from django.db import migrations


def create(apps, schema_editor):
    # Reviewers decide which cases the gallery shows; the report tells them which ones
    # bring consultations. Clinic admins (superusers) have every permission.
    app_config = apps.get_app_config("analytics")
    if getattr(app_config, "models_module", None) is None:  # a historical app config
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    else:
        create_permissions(app_config, verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="analytics", codename="view_report")
    group, _ = Group.objects.get_or_create(name="Reviewers")
    group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_counts"),
        ("gallery", "0003_roles"),
    ]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
