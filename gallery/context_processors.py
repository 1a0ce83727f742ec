from django.conf import settings


def clinic(request) -> dict:
    return {
        "CLINIC_NAME": settings.CLINIC_NAME,
        "CLINIC_BOOKING_URL": settings.CLINIC_BOOKING_URL,
    }
