from django.db import migrations

BODY = """\
What this form covers
You are asked whether {clinic} may use photographs taken of you before, during and after your treatment for the purposes you choose below. The photographs may show the treated area and, only if you tick "identifiable", your face or another feature by which someone could recognise you. If you do not tick it, only cropped photos that do not show your face or any identifying feature will be used.

Who will use them
Only {clinic} and its staff, on the channels you choose. Your name, chart reference and contact details are never published next to your photos.

For which purposes
Each purpose is a separate choice, and none is chosen for you:
- the clinic's website gallery, where prospective patients can see treatment results;
- the clinic's social media accounts;
- printed material, such as brochures in the clinic;
- education and training of health professionals.

How long
This consent ends on the expiry date written on it. After that date the photos are taken off every place they were published, unless you sign a new consent.

Your right to withdraw
You may withdraw this consent at any time, without giving a reason, as easily as you gave it: with the private link you receive, by email, by phone, or in person at the clinic. Withdrawal takes your photos off the website at once. Photos already printed or shared before your withdrawal cannot always be recalled, and the clinic will stop using them.

Your treatment does not depend on this
Whether you sign, refuse or later withdraw has no effect on your treatment, its price or your care. The photos in your medical record are kept as part of your care whatever you decide here.

Adults only
Photos of a person under 18 are never published in the gallery.
"""


def create(apps, schema_editor):
    ConsentForm = apps.get_model("consent", "ConsentForm")
    ConsentForm.objects.get_or_create(
        version="2026-1",
        defaults={
            "title": "Consent to the use of treatment photographs",
            "body": BODY.format(clinic="the clinic"),
        },
    )


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
