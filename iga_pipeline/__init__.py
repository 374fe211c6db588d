"""Integration Genom Arbete: from raw deliveries to the evaluator's verdict."""
