<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:include href="footer.xsl"/>
  <xsl:template match="para"><p><xsl:value-of select="."/></p></xsl:template>
</xsl:stylesheet>
