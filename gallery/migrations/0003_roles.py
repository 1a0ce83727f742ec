from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "Photographers": [
        "gallery.view_case",
        "gallery.add_case",
        "gallery.change_case",
        "gallery.view_photo",
        "gallery.add_photo",
        "gallery.change_photo",
        "gallery.delete_photo",
        "gallery.view_treatment",
        "gallery.view_concern",
        "consent.view_patient",
        "consent.add_patient",
        "consent.view_consent",
        "consent.add_consent",
    ],
    "Reviewers": [
        "gallery.view_case",
        "gallery.change_case",
        "gallery.publish_case",
        "gallery.view_original",
        "gallery.view_photo",
        "gallery.change_photo",
        "gallery.view_treatment",
        "gallery.view_concern",
        "consent.view_patient",
        "consent.view_consent",
    ],
    "Consent officers": [
        "consent.view_patient",
        "consent.add_patient",
        "consent.change_patient",
        "consent.view_consent",
        "consent.add_consent",
        "consent.change_consent",
        "consent.withdraw_consent",
        "consent.export_evidence",
        "consent.view_consentevent",
        "consent.view_consentform",
        "consent.add_consentform",
        "gallery.view_case",
        "gallery.view_photo",
        "gallery.view_original",
    ],
}


def create(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so the
    # groups can be given them on a fresh database.
    for app_config in apps.get_app_configs():
        if getattr(app_config, "models_module", None) is None:  # a historical app config
            app_config.models_module = True
            create_permissions(app_config, verbosity=0, apps=apps)
            app_config.models_module = None
        else:
            create_permissions(app_config, verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0002_reference_data"),
        ("consent", "0002_first_consent_form"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
