"""Training code for EmoCap's learned models. Imports core; core never imports this."""
