package bazaar;

import java.net.InetSocketAddress;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.TSetIpAddressProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;
import org.apache.thrift.transport.TTransportFactory;

/**
 * The Hive 2.3 metastore (the classes inside pyspark's jars) served on one
 * address only. HiveMetaStore's own main binds every interface; this binds the
 * configured host (127.0.0.1 by default), with the same handler and protocol
 * (TBinaryProtocol over a buffered transport, no SASL).
 *
 * Usage: java -cp CONF_DIR:THIS_DIR:PYSPARK/jars/* bazaar.LoopbackMetaStore HOST PORT
 * where CONF_DIR holds hive-site.xml.
 */
public final class LoopbackMetaStore {
    private LoopbackMetaStore() {}

    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        HiveConf conf = new HiveConf(LoopbackMetaStore.class);
        HiveMetaStore.HMSHandler base = new HiveMetaStore.HMSHandler("bazaar metastore", conf, false);
        IHMSHandler handler = HiveMetaStore.newRetryingHMSHandler(base, conf);
        TServerSocket socket = new TServerSocket(new InetSocketAddress(host, port));
        TThreadPoolServer.Args serverArgs = new TThreadPoolServer.Args(socket)
            .processor(new TSetIpAddressProcessor<>(handler))
            .transportFactory(new TTransportFactory())
            .protocolFactory(new TBinaryProtocol.Factory())
            .minWorkerThreads(4)
            .maxWorkerThreads(100);
        System.out.println("metastore serving on " + host + ":" + port);
        new TThreadPoolServer(serverArgs).serve();
    }
}
