from django.urls import path

from consent import views

app_name = "consent"

urlpatterns = [
    path("", views.consent_list, name="list"),
    path("patients/new/", views.patient_new, name="patient-new"),
    path("patients/<int:pk>/", views.patient_detail, name="patient"),
    path("new/<int:patient>/", views.consent_new, name="new"),
    path("<int:pk>/", views.consent_detail, name="detail"),
    path("<int:pk>/withdraw/", views.consent_withdraw, name="withdraw"),
    path("<int:pk>/send-link/", views.consent_send_link, name="send-link"),
    path("<int:pk>/document/", views.consent_document, name="document"),
    path("kiosk/start/<int:patient>/", views.kiosk_start, name="kiosk-start"),
    path("kiosk/", views.kiosk_page, name="kiosk"),
    path("kiosk/unlock/", views.kiosk_unlock, name="kiosk-unlock"),
    path("<int:pk>/evidence.zip", views.consent_evidence, name="evidence"),
    path("<int:pk>/consent.fhir.json", views.consent_fhir, name="fhir"),
]
