<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" indent="no"/>
  <xsl:template match="/page"><out><xsl:value-of select="title"/>/<xsl:value-of select="document('../data.xml')/data"/></out></xsl:template>
</xsl:stylesheet>
