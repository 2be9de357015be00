"""The pages: each module has ``layout(env, ...)`` and ``register(app, env)``."""
