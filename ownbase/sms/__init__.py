"""Text messages (SMS): console outbox, Amazon SNS and Twilio behind one interface."""
