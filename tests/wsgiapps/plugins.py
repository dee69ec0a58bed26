"""A test plugin: X-Test-User names the user (as an auth plugin would)."""


class User:
    name = "test_user"

    def hook_authentication(self, request, conf):
        user = request.headers.get("x-test-user")
        if user:
            request.user = user
            request.auth_type = "Basic"
        return None
