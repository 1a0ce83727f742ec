# The consent form in Spanish, and on every consent the language and exact text signed.

from django.db import migrations, models

TITLE_ES = "Consentimiento para el uso de fotografías del tratamiento"

BODY_ES = """\
Qué abarca este formulario
Se le pregunta si {clinic} puede usar las fotografías que se le tomen antes, durante y después de su tratamiento para los fines que usted elija a continuación. Las fotografías pueden mostrar la zona tratada y, solo si marca «identificable», su rostro u otro rasgo por el que alguien pudiera reconocerle. Si no lo marca, solo se usarán fotos recortadas que no muestren su rostro ni ningún rasgo identificativo.

Quién las usará
Solo {clinic} y su personal, en los medios que usted elija. Su nombre, su número de historia clínica y sus datos de contacto nunca se publican junto a sus fotos.

Para qué fines
Cada fin es una decisión aparte, y ninguno se elige por usted:
- la galería del sitio web de la clínica, donde los futuros pacientes pueden ver los resultados de los tratamientos;
- las redes sociales de la clínica;
- material impreso, como folletos en la clínica;
- la formación y capacitación de profesionales de la salud.

Por cuánto tiempo
Este consentimiento termina en la fecha de vencimiento que figura en él. Después de esa fecha, las fotos se retiran de todos los lugares donde se publicaron, a menos que usted firme un nuevo consentimiento.

Su derecho a retirarlo
Puede retirar este consentimiento en cualquier momento, sin dar explicaciones, con la misma facilidad con que lo dio: con el enlace privado que recibe, por correo electrónico, por teléfono o en persona en la clínica. Al retirarlo, sus fotos se quitan del sitio web de inmediato. Las fotos ya impresas o compartidas antes de su retiro no siempre pueden recuperarse, y la clínica dejará de usarlas.

Su tratamiento no depende de esto
Firmar, negarse o retirar el consentimiento más adelante no afecta en nada a su tratamiento, a su precio ni a su atención. Las fotos de su historia clínica se conservan como parte de su atención, decida lo que decida aquí.

Solo personas adultas
Las fotos de menores de 18 años nunca se publican en la galería.
"""


def forward(apps, schema_editor):
    ConsentForm = apps.get_model("consent", "ConsentForm")
    Consent = apps.get_model("consent", "Consent")
    # The first version (0002) in Spanish: a language added, the English text unchanged.
    first = ConsentForm.objects.filter(version="2026-1").first()
    if first is not None and not first.translations:
        first.translations = {
            "es": {"title": TITLE_ES, "body": BODY_ES.format(clinic="la clínica")}
        }
        first.save(update_fields=["translations"])
    # Every consent so far was read and signed in English, on its version's text.
    for form in ConsentForm.objects.all():
        Consent.objects.filter(form=form, signed_text="").update(
            signed_text=f"{form.title}\n\n{form.body}"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0006_consent_reminders"),
    ]

    operations = [
        migrations.AddField(
            model_name="consent",
            name="language",
            field=models.CharField(
                default="en",
                help_text="The language of the text the patient read and signed.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="consent",
            name="signed_text",
            field=models.TextField(
                blank=True,
                editable=False,
                help_text="The exact text the patient read and signed (the form version's, in their language).",
            ),
        ),
        migrations.AddField(
            model_name="consentform",
            name="translations",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='The text in other languages: {"es": {"title": "…", "body": "…"}}.',
            ),
        ),
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
