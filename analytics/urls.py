from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("a/", views.event, name="event"),
    path("book/", views.book, name="book"),
    path("staff/analytics/", views.report_page, name="report"),
    path("staff/analytics/counts.csv", views.report_csv, name="report-csv"),
]
