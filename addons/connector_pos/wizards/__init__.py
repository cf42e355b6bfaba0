from . import connector_pos_upload_key
