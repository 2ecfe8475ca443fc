from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

from accounts.forms import LogInForm, SignUpForm
from inventory_project import throttles


@sensitive_post_parameters("password1", "password2")
def signup(request):
    if request.method == "POST":
        # The same per-address count as the API's sign-up (POST /api/users).
        wait = throttles.refusal(request, None, [throttles.SignUpRateThrottle])
        if wait is not None:
            message = f"Too many sign-ups from your address. Try again in {wait} seconds."
            return _too_many(request, "registration/signup.html", SignUpForm(), message, wait)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}! Your account is ready.")
        next_url = request.GET.get("next", "")
        if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
            return redirect(next_url)
        return redirect("drop-list")
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Django's log-in form, limited like the API's token view (accounts.api.TokenView),
    on the same counters: a guesser gains nothing by switching between them."""

    redirect_authenticated_user = True
    authentication_form = LogInForm

    def post(self, request, *args, **kwargs):
        wait = throttles.refusal(
            request, self, [throttles.LoginRateThrottle, throttles.LoginFailureThrottle]
        )
        if wait is not None:
            context = self.get_context_data(form=self.get_form_class()(request))
            message = f"Too many log-in attempts. Try again in {wait} seconds."
            return _too_many(request, self.template_name, context["form"], message, wait, context)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttles.record_login_failure(
            self.request, throttles.submitted_username(self.request.POST)
        )
        return super().form_invalid(form)


def _too_many(request, template: str, form, message: str, wait: int, context=None):
    """The form again, unfilled, with 429 and Retry-After."""
    messages.error(request, message)
    response = render(request, template, {**(context or {}), "form": form}, status=429)
    response["Retry-After"] = str(wait)
    return response
