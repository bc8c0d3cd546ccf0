// Publishes this page's style nonce before the ReDoc bundle loads (its style loader reads it).
self.REDOC_STYLE_NONCE = document.getElementById("redoc").getAttribute("data-nonce");
