from django.urls import path

from gallery import views

app_name = "gallery"

urlpatterns = [
    path("", views.home, name="home"),
    path("gallery/", views.case_list, name="list"),
    path("gallery/<str:public_id>/", views.case_detail, name="case"),
    path("treatments/<slug:slug>/", views.treatment_detail, name="treatment"),
    path("practitioners/<slug:slug>/", views.practitioner_detail, name="practitioner"),
    path("locations/<slug:slug>/", views.location_detail, name="location"),
    path("api/openapi.json", views.api_openapi, name="api-openapi"),
    path("embed/", views.embed, name="embed"),
    path("api/cases/", views.api_case_list, name="api-list"),
    path("api/cases/<str:public_id>/", views.api_case_detail, name="api-case"),
]
