from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Before/after gallery"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save
        from PIL import Image

        from consent import hooks
        from consent.signals import consent_changed, consent_changing
        from gallery import erasure, images, receivers

        images.register_heif()
        # Pillow warns above MAX_IMAGE_PIXELS and refuses at twice that; the pipeline
        # turns the warning into a refusal, so the cap is the clinic's pixel limit.
        Image.MAX_IMAGE_PIXELS = settings.PHOTO_MAX_PIXELS
        consent_changed.connect(receivers.consent_changed, dispatch_uid="gallery-consent")
        consent_changing.connect(
            receivers.consent_changing, dispatch_uid="gallery-consent-changing"
        )
        hooks.register(receivers.held_cases)
        hooks.register_eraser(erasure.erase_cases)
        hooks.register_patient_page(receivers.patient_page_path)
        for model in ("Treatment", "Concern", "Location", "Practitioner"):
            for signal in (post_save, post_delete):
                signal.connect(
                    receivers.reference_data_changed,
                    sender=self.get_model(model),
                    dispatch_uid=f"gallery-reference-{model}-{signal}",
                )
        m2m_changed.connect(
            receivers.reference_data_changed,
            sender=self.get_model("Practitioner").locations.through,
            dispatch_uid="gallery-reference-practitioner-locations",
        )
        for model in ("Treatment", "Location"):
            post_save.connect(
                receivers.rules_input_changed,
                sender=self.get_model(model),
                dispatch_uid=f"gallery-rules-{model}",
            )
        # After an upgrade (or a restore), the listing is rebuilt from the rule.
        post_migrate.connect(receivers.relist, sender=self, dispatch_uid="gallery-relist")
