"""Custom Rasa components of the 卡盟 assistant (loaded by Rasa from nlu/, the directory it runs in)."""
