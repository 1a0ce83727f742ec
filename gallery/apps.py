from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Before/after gallery"

    def ready(self) -> None:
        from django.conf import settings
        from PIL import Image

        from consent.signals import consent_changed
        from gallery import images, receivers

        images.register_heif()
        # Pillow warns above MAX_IMAGE_PIXELS and refuses at twice that; the pipeline
        # turns the warning into a refusal, so the cap is the clinic's pixel limit.
        Image.MAX_IMAGE_PIXELS = settings.PHOTO_MAX_PIXELS
        consent_changed.connect(receivers.consent_changed, dispatch_uid="gallery-consent")
