<?xml version="1.0"?>
<!-- What both styles share: paragraphs and code, imported by page.xsl and print.xsl. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="para"><p><xsl:apply-templates/></p></xsl:template>
  <xsl:template match="code"><code><xsl:value-of select="."/></code></xsl:template>
</xsl:stylesheet>
