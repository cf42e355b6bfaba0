from . import closing, upload
