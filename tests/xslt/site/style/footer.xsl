<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="deep/level3.xsl"/>
  <xsl:template name="footer"><p class="footer">footer v1 <xsl:call-template name="deep"/></p></xsl:template>
</xsl:stylesheet>
