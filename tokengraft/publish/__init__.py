"""Publishing an output folder: its model card and the hub push."""
