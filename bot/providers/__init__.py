"""SMS providers behind one typed interface (see :mod:`bot.providers.base`)."""
