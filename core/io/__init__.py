"""Files other tools read: Capture and PersonalModel files, Live Link Face CSV."""
