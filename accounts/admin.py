from django.contrib import admin

from accounts.forms import AdminLogInForm

# The admin's log-in counts towards, and is refused by, the shop's log-in limits.
admin.site.login_form = AdminLogInForm
