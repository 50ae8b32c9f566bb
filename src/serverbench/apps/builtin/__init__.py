"""The seed report's apps, shipped so that `serverbench run` reproduces it with no app of the user's."""
