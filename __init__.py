"""Likeness, the Blender extension: facial performance capture from video (see addon/ and core/)."""


def register():
    from . import addon

    addon.register()


def unregister():
    from . import addon

    addon.unregister()
